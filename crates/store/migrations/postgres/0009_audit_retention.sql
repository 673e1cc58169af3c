-- Audit retention (issue 11): the oldest records may be retired into a signed export. The tail is
-- the last retired record's position and seal, itself sealed, so the remaining chain verifies from
-- it. `retaining` is 1 only inside the retention transaction, and only then may rows at or before the
-- tail be deleted; updates stay refused always. Moving the tail forward needs the key (its seal), so
-- deleting records through this door without the key is named by `tradesignal audit verify`.
CREATE TABLE audit_chain_tail (
    id        BIGINT PRIMARY KEY CHECK (id = 1),
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL,
    tail_seal TEXT NOT NULL,
    retired   BIGINT NOT NULL,
    retaining INTEGER NOT NULL DEFAULT 0
);

CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM audit_chain_tail t WHERE t.id = 1 AND t.retaining = 1 AND OLD.seq <= t.seq
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;
