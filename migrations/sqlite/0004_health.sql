-- One row the health check rewrites: a database that answers reads but cannot take a write
-- (a full disk, a lock held for good) is not healthy, and only a write finds that out.
CREATE TABLE health (
    id         BIGINT PRIMARY KEY,
    checked_at BIGINT NOT NULL
);
INSERT INTO health (id, checked_at) VALUES (1, 0);
