-- The build a snapshot's totals are against (docs/ARCHITECTURE.md, "One service, many
-- builds"): the newest build among its instances. A snapshot of several builds (a rolling
-- update) counts each statement once, against this build's source, with what the other
-- builds measured carried into its unchanged functions. NULL for snapshots stored before
-- this column, whose totals were summed over their builds; they are read against their
-- newest build.
ALTER TABLE snapshots ADD COLUMN build_id BIGINT REFERENCES builds (id);

-- The view gains `reported`: 1 for the rows of the build the snapshot's totals are against
-- (and for every row of a snapshot stored before it was recorded). Each build's rows hold
-- that build's own counts; what is carried between builds is the API's to report.
DROP VIEW snapshot_file_coverage;
CREATE VIEW snapshot_file_coverage AS
SELECT s.id AS snapshot_id, s.service, s.taken_at, s.label, b.build, f.file_index,
       f.name AS file, f.blocks, COALESCE(sf.blocks_covered, 0) AS blocks_covered,
       f.stmts, COALESCE(sf.stmts_covered, 0) AS stmts_covered,
       CASE WHEN s.build_id IS NULL OR s.build_id = sb.build_id THEN 1 ELSE 0 END AS reported
FROM snapshots s
JOIN snapshot_builds sb ON sb.snapshot_id = s.id
JOIN builds b ON b.id = sb.build_id
JOIN build_files f ON f.build_id = sb.build_id
LEFT JOIN snapshot_files sf
       ON sf.snapshot_id = s.id AND sf.build_id = f.build_id AND sf.file_index = f.file_index;
