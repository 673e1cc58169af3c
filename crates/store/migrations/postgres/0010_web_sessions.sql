-- Web sessions (issue 12): a browser's session is carried by an opaque cookie; only its SHA-256 is
-- stored, so a copy of this table signs nobody in. API sessions leave it NULL.
ALTER TABLE sessions ADD COLUMN web_token_hash TEXT;
CREATE UNIQUE INDEX sessions_web_token_hash ON sessions (web_token_hash);
