-- What a build left uninstrumented (`livecov build --exclude`, `--skip-generated`), as its
-- metadata's "excluded" field records it: JSON {"patterns": [...], "generated": bool,
-- "files": [...]}. NULL when the build left nothing out, and for builds stored before.
ALTER TABLE builds ADD COLUMN excluded TEXT;
