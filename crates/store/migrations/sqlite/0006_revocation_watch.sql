-- A revocation that one instance could not write to Redis (issue 13): until `pending_until` every
-- instance checks sessions in the database rather than trust entries Redis may still hold.
CREATE TABLE revocation_watch (
    id            BIGINT PRIMARY KEY CHECK (id = 1),
    pending_until BIGINT NOT NULL
);
INSERT INTO revocation_watch (id, pending_until) VALUES (1, 0);
