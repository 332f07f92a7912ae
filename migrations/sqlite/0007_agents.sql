-- Agents of a workspace: the assistant's agents (`kind` = 'assistant': made in the UI with a
-- model, a system prompt, the tools they may use and which of those skip the user's approval)
-- and external agents of the Porta agent API (`kind` = 'api': registered by their first call
-- to /api/v1, `name` being the `agent_id` they send). A deleted agent (deleted_ms) keeps its
-- history; `disabled` agents are refused.
CREATE TABLE agents (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    template        TEXT,
    model           TEXT,
    system_prompt   TEXT NOT NULL DEFAULT '',
    tools           TEXT NOT NULL DEFAULT '[]',
    auto_approve    TEXT NOT NULL DEFAULT '[]',
    max_steps       INTEGER NOT NULL DEFAULT 20,
    max_seconds     INTEGER NOT NULL DEFAULT 600,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_by      TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    last_seen_ms    BIGINT,
    operations      BIGINT NOT NULL DEFAULT 0,
    deleted_ms      BIGINT
);
-- One live agent of a name per workspace.
CREATE UNIQUE INDEX agents_name ON agents(workspace_id, name) WHERE deleted_ms IS NULL;

-- Everything an agent did: the seed's operation history (type, details, time, success), with
-- where and by whose authority. Each row is also an `agent.*` event in the audit log.
CREATE TABLE agent_operations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id        TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    workspace_id    TEXT NOT NULL,
    server_id       TEXT,
    kind            TEXT NOT NULL,
    details         TEXT NOT NULL,
    at_ms           BIGINT NOT NULL,
    duration_ms     BIGINT NOT NULL,
    success         BOOLEAN NOT NULL,
    actor           TEXT NOT NULL
);
CREATE INDEX agent_operations_agent ON agent_operations(agent_id, at_ms);
CREATE INDEX agent_operations_workspace ON agent_operations(workspace_id, at_ms);
