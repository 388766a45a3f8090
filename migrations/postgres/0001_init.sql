-- livecov's store. Times are milliseconds since the Unix epoch, UTC.

-- A build's block metadata, stored once, as the agent served it (gzip JSON).
CREATE TABLE builds (
    id         BIGSERIAL PRIMARY KEY,
    build      TEXT    NOT NULL UNIQUE,   -- the 64-hex build id
    mode       TEXT    NOT NULL,
    files      BIGINT  NOT NULL,
    blocks     BIGINT  NOT NULL,
    stmts      BIGINT  NOT NULL,
    meta       BYTEA   NOT NULL,
    created_at BIGINT  NOT NULL
);

-- The files of a build, for per-file totals in SQL.
CREATE TABLE build_files (
    build_id   BIGINT NOT NULL REFERENCES builds (id),
    file_index BIGINT NOT NULL,
    name       TEXT   NOT NULL,
    blocks     BIGINT NOT NULL,
    stmts      BIGINT NOT NULL,
    PRIMARY KEY (build_id, file_index)
);

CREATE TABLE services (
    name       TEXT   PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- Every instance that ever registered. state is 'live' or 'gone'; gone instances stay.
CREATE TABLE instances (
    id            TEXT   PRIMARY KEY,
    service       TEXT   NOT NULL REFERENCES services (name),
    build         TEXT   NOT NULL,
    mode          TEXT   NOT NULL,
    hostname      TEXT   NOT NULL,
    pid           BIGINT NOT NULL,
    start_time    TEXT   NOT NULL,
    go_version    TEXT   NOT NULL,
    address       TEXT   NOT NULL,        -- host:port the server pulls from
    registered_at BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    state         TEXT   NOT NULL,
    gone_at       BIGINT
);
CREATE INDEX instances_by_service ON instances (service, state);
CREATE INDEX instances_by_state ON instances (state, last_seen);

-- An immutable observation of a service. Totals are summed over the snapshot's builds.
CREATE TABLE snapshots (
    id               BIGSERIAL PRIMARY KEY,
    service          TEXT   NOT NULL REFERENCES services (name),
    label            TEXT,
    reset            BIGINT NOT NULL,      -- 1: the counters were taken with a reset
    taken_at         BIGINT NOT NULL,
    duration_ms      BIGINT NOT NULL,
    instances_ok     BIGINT NOT NULL,
    instances_failed BIGINT NOT NULL,
    blocks           BIGINT NOT NULL,
    blocks_covered   BIGINT NOT NULL,
    stmts            BIGINT NOT NULL,
    stmts_covered    BIGINT NOT NULL
);
CREATE INDEX snapshots_by_service ON snapshots (service, id);

-- The merged counters of one build in a snapshot, LCC1-encoded (docs/COUNTERS.md).
CREATE TABLE snapshot_builds (
    snapshot_id    BIGINT NOT NULL REFERENCES snapshots (id),
    build_id       BIGINT NOT NULL REFERENCES builds (id),
    instances      BIGINT NOT NULL,
    blocks_covered BIGINT NOT NULL,
    stmts_covered  BIGINT NOT NULL,
    counters       BYTEA  NOT NULL,
    PRIMARY KEY (snapshot_id, build_id)
);

-- Per-file totals of a snapshot, one row per file with at least one covered block; the view
-- snapshot_file_coverage below has every file. Rows are small, many and only ever appended in
-- snapshot order, so a BRIN index on the snapshot finds them at almost no cost in space.
CREATE TABLE snapshot_files (
    snapshot_id    BIGINT  NOT NULL REFERENCES snapshots (id),
    build_id       BIGINT  NOT NULL REFERENCES builds (id),
    file_index     INTEGER NOT NULL,
    blocks_covered INTEGER NOT NULL,
    stmts_covered  INTEGER NOT NULL
);
CREATE INDEX snapshot_files_by_snapshot ON snapshot_files USING brin (snapshot_id);

-- What each instance answered when the snapshot was taken (its build and address are the
-- instance's). Appended in snapshot order, like snapshot_files.
CREATE TABLE snapshot_instances (
    snapshot_id BIGINT  NOT NULL REFERENCES snapshots (id),
    instance    TEXT    NOT NULL REFERENCES instances (id),
    outcome     TEXT    NOT NULL,          -- ok, timeout, refused, error, rejected
    message     TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX snapshot_instances_by_snapshot ON snapshot_instances USING brin (snapshot_id);

-- Every file of every snapshot with its totals: what dashboards chart.
CREATE VIEW snapshot_file_coverage AS
SELECT s.id AS snapshot_id, s.service, s.taken_at, s.label, b.build, f.file_index,
       f.name AS file, f.blocks, COALESCE(sf.blocks_covered, 0) AS blocks_covered,
       f.stmts, COALESCE(sf.stmts_covered, 0) AS stmts_covered
FROM snapshots s
JOIN snapshot_builds sb ON sb.snapshot_id = s.id
JOIN builds b ON b.id = sb.build_id
JOIN build_files f ON f.build_id = sb.build_id
LEFT JOIN snapshot_files sf
       ON sf.snapshot_id = s.id AND sf.build_id = f.build_id AND sf.file_index = f.file_index;
