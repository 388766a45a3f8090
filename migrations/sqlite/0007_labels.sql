-- Labels an instance registered with (LIVECOV_LABELS, the build's VCS revision, Kubernetes
-- pod and namespace), as a JSON object of strings; NULL for none. A snapshot taken of the
-- instances matching a selector ("env=staging,region=eu") keeps it, in its canonical form
-- (pairs sorted by key); NULL for a snapshot of every live instance.
ALTER TABLE instances ADD COLUMN labels TEXT;
ALTER TABLE snapshots ADD COLUMN selector TEXT;
