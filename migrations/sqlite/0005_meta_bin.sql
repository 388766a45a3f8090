-- A build's metadata in livecov's binary form (LCM1, server/src/lcm.rs) beside the gzip JSON:
-- what a load after a start reads, a pass over a few bytes per block instead of a gunzip and a
-- JSON parse. Derived from meta, which stays the reference: rows stored before this column get
-- it on their first load, and a value that fails its check is read from meta and written anew.
ALTER TABLE builds ADD COLUMN meta_bin BLOB;
