-- Market data (DESIGN.md "Data model", domain side). Decimals (shares, prices, values) are kept as
-- exact decimal text; `value_cents` repeats the value as an integer so it can be filtered and
-- sorted. Dates are ISO `YYYY-MM-DD` text, which sorts and compares correctly; instants are Unix
-- seconds as elsewhere.

CREATE TABLE companies (
    cik        TEXT PRIMARY KEY,
    ticker     TEXT,
    name       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX companies_ticker ON companies (ticker);

CREATE TABLE insiders (
    cik        TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE filings (
    id                          TEXT PRIMARY KEY,
    -- 'acc:<accession number>' when known, else 'sha256:<digest of the document>': re-ingesting
    -- the same filing finds it here and changes nothing.
    dedup_key                   TEXT NOT NULL UNIQUE,
    accession_number            TEXT,
    document_type               TEXT NOT NULL,
    -- Deferred: ingest writes the filing row first (so a duplicate writes nothing), the company
    -- right after, in the same transaction.
    issuer_cik                  TEXT NOT NULL REFERENCES companies (cik) DEFERRABLE INITIALLY DEFERRED,
    -- The reporting owners' CIKs, sorted and comma-separated, for matching amendments.
    owner_ciks                  TEXT NOT NULL,
    period_of_report            TEXT,
    date_of_original_submission TEXT,
    filed_at                    TEXT,
    superseded_by               TEXT REFERENCES filings (id),
    ingested_at                 BIGINT NOT NULL
);
CREATE INDEX filings_issuer ON filings (issuer_cik);

CREATE TABLE insider_relationships (
    filing_id            TEXT NOT NULL REFERENCES filings (id) ON DELETE CASCADE,
    insider_cik          TEXT NOT NULL REFERENCES insiders (cik),
    position             BIGINT NOT NULL,
    is_director          BIGINT NOT NULL CHECK (is_director IN (0, 1)),
    is_officer           BIGINT NOT NULL CHECK (is_officer IN (0, 1)),
    officer_title        TEXT,
    is_ten_percent_owner BIGINT NOT NULL CHECK (is_ten_percent_owner IN (0, 1)),
    is_other             BIGINT NOT NULL CHECK (is_other IN (0, 1)),
    other_text           TEXT,
    PRIMARY KEY (filing_id, insider_cik)
);
CREATE INDEX insider_relationships_insider ON insider_relationships (insider_cik);

CREATE TABLE insider_trades (
    id                 TEXT PRIMARY KEY,
    filing_id          TEXT NOT NULL REFERENCES filings (id) ON DELETE CASCADE,
    row_index          BIGINT NOT NULL,
    company_cik        TEXT NOT NULL REFERENCES companies (cik),
    -- The ticker the filing reported, kept per trade so `ticker=` filters use one index.
    ticker             TEXT,
    -- The filing's first reporting owner.
    insider_cik        TEXT NOT NULL REFERENCES insiders (cik),
    security_title     TEXT NOT NULL,
    transaction_date   TEXT NOT NULL,
    code               TEXT NOT NULL,
    acquired_disposed  TEXT NOT NULL CHECK (acquired_disposed IN ('A', 'D')),
    shares             TEXT NOT NULL,
    price_per_share    TEXT,
    value              TEXT,
    value_cents        BIGINT,
    shares_owned_after TEXT,
    direct_indirect    TEXT NOT NULL CHECK (direct_indirect IN ('D', 'I')),
    is_derivative      BIGINT NOT NULL CHECK (is_derivative IN (0, 1)),
    filed_at           TEXT,
    -- 0 once an amendment supersedes the filing: kept, but no longer served.
    is_current         BIGINT NOT NULL DEFAULT 1 CHECK (is_current IN (0, 1)),
    UNIQUE (filing_id, row_index)
);
CREATE INDEX insider_trades_ticker ON insider_trades (ticker, is_current, transaction_date);
CREATE INDEX insider_trades_insider ON insider_trades (insider_cik, is_current, transaction_date);
CREATE INDEX insider_trades_company ON insider_trades (company_cik, is_current, transaction_date);
CREATE INDEX insider_trades_date ON insider_trades (is_current, transaction_date);
CREATE INDEX insider_trades_value ON insider_trades (is_current, value_cents);

CREATE TABLE congressional_trades (
    id                TEXT PRIMARY KEY,
    fingerprint       TEXT NOT NULL UNIQUE,
    member            TEXT NOT NULL,
    chamber           TEXT NOT NULL CHECK (chamber IN ('house', 'senate')),
    ticker            TEXT,
    asset_description TEXT NOT NULL,
    kind              TEXT NOT NULL,
    amount_low_cents  BIGINT NOT NULL,
    amount_high_cents BIGINT,
    transaction_date  TEXT NOT NULL,
    disclosure_date   TEXT,
    owner             TEXT,
    link              TEXT,
    ingested_at       BIGINT NOT NULL
);
CREATE INDEX congressional_trades_ticker ON congressional_trades (ticker, transaction_date);
CREATE INDEX congressional_trades_date ON congressional_trades (transaction_date);

CREATE TABLE watchlists (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    -- JSON array of tickers.
    tickers    TEXT NOT NULL,
    notes      TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX watchlists_user ON watchlists (user_id, created_at);

CREATE TABLE alerts (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    ticker          TEXT,
    insider_cik     TEXT,
    -- Comma-separated transaction codes, or NULL for any.
    codes           TEXT,
    min_value_cents BIGINT,
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    webhook_url     TEXT,
    -- Encrypted with the data key ring (AAD names the alert); never returned after creation.
    webhook_secret  TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX alerts_user ON alerts (user_id, created_at);
CREATE INDEX alerts_ticker ON alerts (ticker);
CREATE INDEX alerts_insider ON alerts (insider_cik);

CREATE TABLE alert_deliveries (
    id              TEXT PRIMARY KEY,
    alert_id        TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    trade_id        TEXT NOT NULL REFERENCES insider_trades (id) ON DELETE CASCADE,
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- Set while a worker holds the delivery, so two instances never send it twice.
    claimed_until   BIGINT,
    response_status BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    UNIQUE (alert_id, trade_id)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt_at);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id, created_at);
