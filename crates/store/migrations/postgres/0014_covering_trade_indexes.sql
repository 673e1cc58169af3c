-- Listings and statistics read trades of one ticker, company or insider. These indexes now end with
-- the listing's tie-breaker (`id`) and include the columns `/trades/stats` and the company figures
-- aggregate, so a count, a statistic or the rows a page skips are read by index-only scans, and a
-- page in transaction-date order needs no sort. They replace the narrower indexes of 0002 with the
-- same leading columns. (Index-only scans need the visibility map that autovacuum keeps.)
DROP INDEX insider_trades_ticker;
CREATE INDEX insider_trades_ticker ON insider_trades (ticker, is_current, transaction_date, id)
    INCLUDE (code, value_cents, company_cik, insider_cik);
DROP INDEX insider_trades_company;
CREATE INDEX insider_trades_company ON insider_trades (company_cik, is_current, transaction_date, id)
    INCLUDE (code, value_cents, insider_cik);
DROP INDEX insider_trades_insider;
CREATE INDEX insider_trades_insider ON insider_trades (insider_cik, is_current, transaction_date, id)
    INCLUDE (code, value_cents, company_cik);
DROP INDEX insider_trades_date;
CREATE INDEX insider_trades_date ON insider_trades (is_current, transaction_date, id);
