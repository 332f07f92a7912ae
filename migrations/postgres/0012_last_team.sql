-- The team each person chose last, on any device: a new device opens on it. No foreign key:
-- a deleted team (or one the person left) is simply not found, and the newest one is shown.
ALTER TABLE users ADD COLUMN last_team_id TEXT;
