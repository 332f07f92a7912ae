-- Recordings are capped: per recording and per workspace (in MB of file), and a recording
-- that stops early says why.
ALTER TABLE workspaces ADD COLUMN max_recording_mb BIGINT NOT NULL DEFAULT 100;
ALTER TABLE workspaces ADD COLUMN max_recordings_mb BIGINT NOT NULL DEFAULT 2048;
ALTER TABLE recordings ADD COLUMN stopped TEXT;

-- Each workspace's command policy (JSON: rules and the tier of commands no rule names);
-- absent, the default policy applies.
CREATE TABLE command_policies (
    workspace_id    TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
    policy          TEXT NOT NULL,
    updated_by      TEXT NOT NULL,
    updated_ms      BIGINT NOT NULL
);
