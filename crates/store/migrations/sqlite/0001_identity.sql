-- Identity and security tables (DESIGN.md "Data model"). Ids are UUID text, times Unix seconds,
-- flags 0/1, so the same queries run on SQLite and PostgreSQL.

CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE,
    password_hash     TEXT NOT NULL,
    full_name         TEXT,
    role              TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'support', 'super_admin')),
    tier              TEXT NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'pro', 'enterprise')),
    email_verified_at BIGINT,
    disabled_at       BIGINT,
    security_stamp    TEXT NOT NULL,
    mfa_enabled       BIGINT NOT NULL DEFAULT 0 CHECK (mfa_enabled IN (0, 1)),
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('web', 'api')),
    created_at     BIGINT NOT NULL,
    last_seen_at   BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    ip             TEXT,
    user_agent     TEXT,
    amr            TEXT NOT NULL,
    auth_time      BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT,
    -- Bumped to invalidate every access token of the session at once (role or tier change).
    token_version  BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    expires_at BIGINT NOT NULL,
    UNIQUE (session_id, generation)
);

CREATE TABLE mfa_totp (
    user_id          TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_encrypted BLOB NOT NULL,
    key_version      TEXT NOT NULL,
    enabled_at       BIGINT,
    last_used_step   BIGINT,
    created_at       BIGINT NOT NULL
);

CREATE TABLE backup_codes (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    used_at    BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX backup_codes_user_id ON backup_codes (user_id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lookup_id    TEXT NOT NULL UNIQUE,
    key_hash     TEXT NOT NULL,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    last_used_ip TEXT,
    revoked_at   BIGINT,
    grace_until  BIGINT
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);

CREATE TABLE one_time_tokens (
    token_hash TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify', 'reset', 'unlock', 'email_change')),
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    new_email  TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX one_time_tokens_user_purpose ON one_time_tokens (user_id, purpose);
-- Only the newest link of a kind is valid: at most one unused token per user and purpose.
CREATE UNIQUE INDEX one_time_tokens_one_open ON one_time_tokens (user_id, purpose) WHERE used_at IS NULL;

CREATE TABLE known_devices (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    UNIQUE (user_id, device_hash)
);

CREATE TABLE audit_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    ts         BIGINT NOT NULL,
    event      TEXT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    actor_id   TEXT,
    subject    TEXT,
    session_id TEXT,
    api_key_id TEXT,
    ip         TEXT,
    user_agent TEXT,
    request_id TEXT,
    details    TEXT NOT NULL DEFAULT '{}',
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_events_event_ts ON audit_events (event, ts);
CREATE INDEX audit_events_subject ON audit_events (subject);

CREATE TABLE security_alerts (
    id              TEXT PRIMARY KEY,
    ts              BIGINT NOT NULL,
    rule            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    subject         TEXT,
    details         TEXT NOT NULL DEFAULT '{}',
    acknowledged_at BIGINT
);
CREATE INDEX security_alerts_ts ON security_alerts (ts);

CREATE TABLE csp_reports (
    id                 TEXT PRIMARY KEY,
    received_at        BIGINT NOT NULL,
    document_uri       TEXT,
    violated_directive TEXT,
    blocked_uri        TEXT,
    client_ip          TEXT,
    report             TEXT NOT NULL
);
CREATE INDEX csp_reports_received_at ON csp_reports (received_at);

-- The audit trail is append-only: rows can be added, never changed or removed.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
