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

-- An API agent belongs to the person whose token registered it: (workspace, owner, name) is
-- its identity, so one person's MCP client cannot take over a colleague's agent (and what it
-- may do without asking) by sending the same name. Assistant agents stay one per name.
ALTER TABLE agents ADD COLUMN owner_id TEXT;
UPDATE agents SET owner_id = substr(created_by, 6) WHERE created_by LIKE 'user:%';
UPDATE agents SET owner_id = (SELECT t.user_id FROM api_tokens t WHERE 'token:' || t.id = agents.created_by)
    WHERE created_by LIKE 'token:%';
DROP INDEX agents_name;
CREATE UNIQUE INDEX agents_name ON agents(workspace_id, name) WHERE deleted_ms IS NULL AND kind = 'assistant';
CREATE UNIQUE INDEX agents_owner_name ON agents(workspace_id, owner_id, name) WHERE deleted_ms IS NULL AND kind = 'api';
