-- Processes that ended: the last counters of an instance, delivered by its agent when main
-- returned or collected from its LIVECOV_DIR after it died, merged (each counter the largest
-- of those received: counters only grow in a process, so a copy received twice, or an older
-- one after a newer, changes nothing). Such an instance is 'exited', from exited_at, and its
-- counts join the snapshots of the window it ran in (docs/ARCHITECTURE.md, "Processes that
-- end").
ALTER TABLE instances ADD COLUMN exited_at BIGINT;
CREATE TABLE instance_finals (
    instance    TEXT   PRIMARY KEY REFERENCES instances (id),
    counters    BYTEA  NOT NULL,          -- LCC1 (docs/COUNTERS.md)
    received_at BIGINT NOT NULL
);
