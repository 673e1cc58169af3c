-- Two-factor authentication and API keys (issue 9).

-- The TOTP secret is stored sealed by `security::fieldcrypt` (text `v1.<key id>.<payload>`, bound to
-- the user by its associated data). The 0001 table (a binary column and a separate key version) never
-- held a row, so it is replaced. A row without `enabled_at` is an enrolment waiting for its first code.
DROP TABLE mfa_totp;
CREATE TABLE mfa_totp (
    user_id        TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    enabled_at     BIGINT,
    -- The last time step whose code was accepted: a code is accepted once, and never one older.
    last_used_step BIGINT NOT NULL DEFAULT 0,
    -- Consecutive failed code checks (TOTP or backup code, reserved before each check) and the end of
    -- the pause they caused: the per-account guessing budget (`security::factor_throttle`).
    failed_checks  BIGINT NOT NULL DEFAULT 0,
    blocked_until  BIGINT NOT NULL DEFAULT 0
);

-- The second step of a login: the mfa_token (stored hashed) issued after the password check.
CREATE TABLE mfa_challenges (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Hash of the client's user agent and device cookie at the password step; the second step must match.
    binding     TEXT NOT NULL,
    -- The security stamp the password step saw: a reset or logout-all in between wins.
    user_stamp  TEXT NOT NULL,
    device_id   TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    used_at     BIGINT
);
CREATE INDEX mfa_challenges_user_id ON mfa_challenges (user_id);
CREATE INDEX mfa_challenges_expires_at ON mfa_challenges (expires_at);

-- API keys: a rotation links the old key to its successor; revocations say why.
ALTER TABLE api_keys ADD COLUMN replaced_by TEXT;
ALTER TABLE api_keys ADD COLUMN revoked_reason TEXT;

-- Requests per key and UTC day (days since the Unix epoch), added to in batches by each instance.
CREATE TABLE api_key_usage (
    api_key_id TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    day        BIGINT NOT NULL,
    requests   BIGINT NOT NULL,
    PRIMARY KEY (api_key_id, day)
);
CREATE INDEX api_key_usage_day ON api_key_usage (day);
