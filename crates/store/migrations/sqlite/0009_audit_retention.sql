-- Audit retention (issue 11): the oldest records may be retired into a signed export. The tail is
-- the last retired record's position and seal, itself sealed, so the remaining chain verifies from
-- it. `retaining` is 1 only inside the retention transaction, and only then may rows at or before the
-- tail be deleted; updates stay refused always.
CREATE TABLE audit_chain_tail (
    id        BIGINT PRIMARY KEY CHECK (id = 1),
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL,
    tail_seal TEXT NOT NULL,
    retired   BIGINT NOT NULL,
    retaining INTEGER NOT NULL DEFAULT 0
);

DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN NOT EXISTS (
    SELECT 1 FROM audit_chain_tail t WHERE t.id = 1 AND t.retaining = 1 AND OLD.seq <= t.seq
)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- The chain's two ends only move forward and never go away: a head rolled back to an older sealed
-- one or a tail pushed forward and back again would otherwise hide removed records.
CREATE TRIGGER audit_chain_head_no_delete BEFORE DELETE ON audit_chain_head
BEGIN
    SELECT RAISE(ABORT, 'audit_chain_head only moves forward');
END;
CREATE TRIGGER audit_chain_head_forward_only BEFORE UPDATE ON audit_chain_head
WHEN NEW.seq < OLD.seq
BEGIN
    SELECT RAISE(ABORT, 'audit_chain_head only moves forward');
END;
CREATE TRIGGER audit_chain_tail_no_delete BEFORE DELETE ON audit_chain_tail
BEGIN
    SELECT RAISE(ABORT, 'audit_chain_tail only moves forward');
END;
CREATE TRIGGER audit_chain_tail_forward_only BEFORE UPDATE ON audit_chain_tail
WHEN NEW.seq < OLD.seq
BEGIN
    SELECT RAISE(ABORT, 'audit_chain_tail only moves forward');
END;
