-- Listings and statistics by ticker, the most asked-for reads, from the index alone: it now ends
-- with the listing's tie-breaker (`id`), so a page in transaction-date order needs no sort and the
-- rows a later page skips are walked in the index, and it carries the columns `/trades/stats`
-- aggregates. The company, insider and date indexes stay as 0002 made them: every extra column in
-- an index is written by every ingest (on PostgreSQL, where ingest has more headroom, they are
-- widened too).
DROP INDEX insider_trades_ticker;
CREATE INDEX insider_trades_ticker ON insider_trades
    (ticker, is_current, transaction_date, id, code, value_cents, company_cik, insider_cik);
