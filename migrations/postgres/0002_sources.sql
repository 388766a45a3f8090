-- The sources of a build's files, uploaded by `livecov build --upload-sources` for the
-- dashboard's annotated source pages: gzip text, one row per file, checked against the build's
-- blocks before they are stored. A file's source is stored once and never changed.
CREATE TABLE build_sources (
    build_id   BIGINT NOT NULL,
    file_index BIGINT NOT NULL,
    source     BYTEA  NOT NULL,
    PRIMARY KEY (build_id, file_index),
    FOREIGN KEY (build_id, file_index) REFERENCES build_files (build_id, file_index)
);
