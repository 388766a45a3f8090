-- Agents that keep a connection to a server (server/src/channel.rs), read by any server.
-- channel_seen is when the instance's agent last polled some server for requests. A server
-- that must read such an instance while another holds its poll writes the request here; the
-- server holding the poll takes it, hands it to the agent and writes the answer; the asker
-- reads the answer and deletes the row. Rows live for one request's timeout.
ALTER TABLE instances ADD COLUMN channel_seen BIGINT;
CREATE TABLE channel_requests (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    instance      TEXT   NOT NULL,
    method        TEXT   NOT NULL,
    path          TEXT   NOT NULL,
    auth          TEXT,                -- the Authorization a pull would send
    max_bytes     BIGINT NOT NULL,     -- the largest answer the asker accepts
    created_at    BIGINT NOT NULL,
    taken_at      BIGINT,              -- when the server holding the poll took it
    status        BIGINT,              -- the answer: the agent's status, headers and body
    build         BLOB,
    epoch         BLOB,
    body          BLOB,
    answered_at   BIGINT
);
CREATE INDEX channel_requests_open ON channel_requests (taken_at, instance);
