-- Listings and statistics read trades of one ticker, company or insider. These indexes end with the
-- listing's tie-breaker (`id`) and include the columns `/trades/stats` and the company figures
-- aggregate, so a count, a statistic or the rows a later page skips are read by index-only scans
-- (which rely on the visibility map autovacuum keeps), and a page in transaction-date order needs
-- no sort. They replace the narrower indexes of 0002 with the same leading columns.
--
-- The new indexes are built before the old ones go: building blocks writes to the table but not
-- reads, which keep the old indexes meanwhile; the exclusive lock of DROP INDEX is taken last and
-- held only until the migration commits.
CREATE INDEX insider_trades_by_ticker ON insider_trades (ticker, is_current, transaction_date, id)
    INCLUDE (code, value_cents, company_cik, insider_cik);
CREATE INDEX insider_trades_by_company ON insider_trades (company_cik, is_current, transaction_date, id)
    INCLUDE (code, value_cents, insider_cik);
CREATE INDEX insider_trades_by_insider ON insider_trades (insider_cik, is_current, transaction_date, id)
    INCLUDE (code, value_cents, company_cik);
CREATE INDEX insider_trades_by_date ON insider_trades (is_current, transaction_date, id);
DROP INDEX insider_trades_ticker;
DROP INDEX insider_trades_company;
DROP INDEX insider_trades_insider;
DROP INDEX insider_trades_date;
