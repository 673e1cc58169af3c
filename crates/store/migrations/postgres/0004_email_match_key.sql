-- Email addresses are unique and matched without regard to case (issue 13). The address stays as
-- typed in `email`; `email_key` holds its match key (`security::email::match_key`). Rows are filled
-- in by the application right after this migration (lower-casing must be Unicode-aware, which the
-- database's LOWER is not on SQLite); addresses that collide keep no key and are reported, never merged.
ALTER TABLE users ADD COLUMN email_key TEXT;
CREATE UNIQUE INDEX users_email_match_key ON users (email_key);
