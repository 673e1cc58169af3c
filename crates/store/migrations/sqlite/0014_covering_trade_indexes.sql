-- Listings and statistics by ticker, the most asked-for reads, from the index alone: it ends with
-- the listing's tie-breaker (`id`), so a page in transaction-date order needs no sort and the rows a
-- later page skips are walked in the index, and it carries the columns `/trades/stats` aggregates.
-- It replaces 0002's ticker index. The company, insider and date indexes stay as 0002 made them:
-- every column an index carries is written by every ingest, and widening all four cost SQLite
-- ingest a quarter of its speed (PostgreSQL, with more headroom, widens them all).
CREATE INDEX insider_trades_by_ticker ON insider_trades
    (ticker, is_current, transaction_date, id, code, value_cents, company_cik, insider_cik);
DROP INDEX insider_trades_ticker;
