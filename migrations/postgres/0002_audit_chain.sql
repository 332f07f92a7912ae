-- Tamper evidence for the audit log: every event is numbered and carries a hash over its
-- fields and the previous event's hash (see backend/src/audit.rs). Events written before this
-- migration get theirs when the backend next starts, in the order they were written.
ALTER TABLE audit_events ADD COLUMN seq BIGINT;
ALTER TABLE audit_events ADD COLUMN source TEXT;
ALTER TABLE audit_events ADD COLUMN server_id TEXT;
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_events ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX audit_events_seq ON audit_events(seq);
CREATE INDEX audit_events_action ON audit_events(action);
CREATE INDEX audit_events_server ON audit_events(server_id);
