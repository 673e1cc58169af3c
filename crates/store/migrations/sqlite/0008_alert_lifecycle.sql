-- Security alerts are acknowledged and resolved by staff (issue 11): who and when.
ALTER TABLE security_alerts ADD COLUMN acknowledged_by TEXT;
ALTER TABLE security_alerts ADD COLUMN resolved_at BIGINT;
ALTER TABLE security_alerts ADD COLUMN resolved_by TEXT;
