-- Rounds and sessions without resetting agents (docs/ARCHITECTURE.md, "Rounds, sessions and
-- boundaries"). Agents never zero their counters; a boundary marks a moment in every live
-- instance of a service, and what each instance answered there is kept, so that a window's
-- coverage is what ran between two boundaries.

-- The per-process secret an agent hands over in its registration: the server presents it on
-- every pull, and a registration of the same instance id must present it again.
ALTER TABLE instances ADD COLUMN secret TEXT;

-- A boundary is written before any agent is asked (done_at NULL) and done once every answer
-- is stored. A server that dies in between applies it again with the same token, which agents
-- that applied it answer exactly as before.
CREATE TABLE boundaries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    service     TEXT   NOT NULL REFERENCES services (name),
    token       TEXT   NOT NULL UNIQUE,   -- sent to agents; unique across databases
    kind        TEXT   NOT NULL,          -- round (a reset), start or stop (of a session)
    session_id  BIGINT,                   -- the session, for start and stop
    label       TEXT,                     -- label of the snapshot the boundary stores
    created_at  BIGINT NOT NULL,
    done_at     BIGINT,
    snapshot_id BIGINT REFERENCES snapshots (id)
);
CREATE INDEX boundaries_pending ON boundaries (service, done_at);

-- What an instance answered at a boundary: the epoch that began there, and its counters then
-- (set mode: the epoch each block was last hit in; count and atomic: counts since start).
CREATE TABLE boundary_instances (
    boundary_id BIGINT NOT NULL REFERENCES boundaries (id),
    instance    TEXT   NOT NULL REFERENCES instances (id),
    epoch       BIGINT NOT NULL,
    counters    BLOB   NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (boundary_id, instance)
) WITHOUT ROWID;

-- Named windows: open from their start boundary until their stop boundary, whose snapshot
-- holds what ran in between.
CREATE TABLE sessions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    service        TEXT   NOT NULL REFERENCES services (name),
    name           TEXT   NOT NULL,
    start_boundary BIGINT NOT NULL REFERENCES boundaries (id),
    stop_boundary  BIGINT REFERENCES boundaries (id),
    snapshot_id    BIGINT REFERENCES snapshots (id)
);
CREATE INDEX sessions_by_service ON sessions (service, name);

-- The boundary that began the service's current round; NULL: no reset yet, the round is
-- each instance's whole life.
ALTER TABLE services ADD COLUMN round_boundary BIGINT REFERENCES boundaries (id);

-- A snapshot's window: kind snapshot (the current round), reset (the round the reset ended)
-- or session; since: when the window began (NULL: when each instance started). Its counters
-- are the window's; deploy_* are what every instance ran since it started.
ALTER TABLE snapshots ADD COLUMN kind TEXT NOT NULL DEFAULT 'snapshot';
ALTER TABLE snapshots ADD COLUMN session TEXT;
ALTER TABLE snapshots ADD COLUMN since BIGINT;
ALTER TABLE snapshots ADD COLUMN deploy_blocks_covered BIGINT NOT NULL DEFAULT 0;
ALTER TABLE snapshots ADD COLUMN deploy_stmts_covered BIGINT NOT NULL DEFAULT 0;
ALTER TABLE snapshot_builds ADD COLUMN deploy_counters BLOB;
ALTER TABLE snapshot_builds ADD COLUMN deploy_blocks_covered BIGINT NOT NULL DEFAULT 0;
ALTER TABLE snapshot_builds ADD COLUMN deploy_stmts_covered BIGINT NOT NULL DEFAULT 0;
UPDATE snapshots SET kind = 'reset' WHERE reset = 1;
UPDATE snapshots SET deploy_blocks_covered = blocks_covered, deploy_stmts_covered = stmts_covered;
UPDATE snapshot_builds SET deploy_counters = counters, deploy_blocks_covered = blocks_covered,
    deploy_stmts_covered = stmts_covered;
