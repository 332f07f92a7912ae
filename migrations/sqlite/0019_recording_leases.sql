-- Which replica records each recording going on, until when unless renewed: when it dies,
-- another ends the recording (saying so) and records the terminal on in a new one.
ALTER TABLE recordings ADD COLUMN holder TEXT;
ALTER TABLE recordings ADD COLUMN lease_until_ms BIGINT;
CREATE INDEX recordings_going ON recordings(lease_until_ms) WHERE ended_ms IS NULL;
