-- The audit chain's head (issue 11): the newest record's position and seal, itself sealed with the
-- data ring, updated in the transaction that appends. It makes removing the newest records visible
-- to `tradesignal audit verify`, which links alone cannot.
CREATE TABLE audit_chain_head (
    id        BIGINT PRIMARY KEY CHECK (id = 1),
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL,
    head_seal TEXT NOT NULL
);
