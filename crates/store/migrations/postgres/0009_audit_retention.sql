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

-- The chain's two ends only move forward and never go away: a head rolled back to an older sealed
-- one (taken from a backup) or a tail pushed forward and back again to open the door would otherwise
-- hide removed records. A tail pushed forward without the key stays, with a seal that does not
-- verify, so `audit verify` names it.
CREATE FUNCTION audit_chain_end_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.seq >= OLD.seq THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% only moves forward', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_chain_head_forward_only
    BEFORE UPDATE OR DELETE ON audit_chain_head
    FOR EACH ROW EXECUTE FUNCTION audit_chain_end_forward_only();
CREATE TRIGGER audit_chain_tail_forward_only
    BEFORE UPDATE OR DELETE ON audit_chain_tail
    FOR EACH ROW EXECUTE FUNCTION audit_chain_end_forward_only();

-- TRUNCATE skips row triggers: refuse it on the trail and its ends.
CREATE FUNCTION audit_no_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% cannot be truncated', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate();
CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate();
CREATE TRIGGER audit_chain_tail_no_truncate BEFORE TRUNCATE ON audit_chain_tail
    FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate();
