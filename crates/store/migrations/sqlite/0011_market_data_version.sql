-- A counter that changes whenever the insider-trade data changes (an ingest group that stored a
-- filing bumps it in the same transaction), so every instance can tell that its cached answers
-- are out of date by reading one row.
CREATE TABLE market_data_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO market_data_version (id, version) VALUES (1, 0);
