-- Scheduled and command-line syncs from outside sources (SEC EDGAR, congressional feeds).
-- A lease says which process runs a sync now: taken when absent or expired, renewed while the sync
-- runs, dropped when it ends. Times are milliseconds since the Unix epoch.
CREATE TABLE sync_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
-- Where a sync resumes: for EDGAR the last day (YYYY-MM-DD) synced with every day before it, for a
-- feed the validator (ETag or Last-Modified) of the copy last ingested. Written only by the lease's
-- holder.
CREATE TABLE sync_checkpoints (
    source      TEXT PRIMARY KEY,
    position    TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
