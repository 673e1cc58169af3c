-- CSP reports are anonymous, so a flood must not fill the database (issue 13): one row per distinct
-- violation (`fingerprint` of page, directive and blocked URI) counting its occurrences, a cap on the
-- rows kept (in the insert) and an age limit (`last_seen_at`, purged hourly).
ALTER TABLE csp_reports ADD COLUMN fingerprint TEXT;
ALTER TABLE csp_reports ADD COLUMN occurrences BIGINT NOT NULL DEFAULT 1;
ALTER TABLE csp_reports ADD COLUMN last_seen_at BIGINT;
UPDATE csp_reports SET fingerprint = id, last_seen_at = received_at;
CREATE UNIQUE INDEX csp_reports_fingerprint ON csp_reports (fingerprint);
CREATE INDEX csp_reports_last_seen_at ON csp_reports (last_seen_at);
