-- The assistant: each workspace's model provider, and people's conversations with it.

-- An OpenAI-compatible endpoint per workspace (absent: the instance's default). The API key
-- is sealed with the instance's secrets key, bound to the workspace; `api_key_hint` is its
-- last characters, to tell keys apart.
CREATE TABLE ai_providers (
    workspace_id    TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
    base_url        TEXT NOT NULL,
    model           TEXT NOT NULL,
    api_key_sealed  TEXT,
    api_key_hint    TEXT,
    updated_by      TEXT NOT NULL,
    updated_ms      BIGINT NOT NULL
);

-- A conversation belongs to one person, in a workspace, about a server (and a project) when
-- it was started on one; with an agent when one answers in it.
CREATE TABLE conversations (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    server_id       TEXT,
    project_id      TEXT,
    agent_id        TEXT,
    title           TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL
);
CREATE INDEX conversations_user ON conversations(user_id, updated_ms);

-- Messages in order. `state`: done, streaming (being written), stopped (by the person),
-- failed (`error` says why), waiting (tool calls waiting for approval).
-- `tool_calls`: JSON, for an assistant message that calls tools; `tool_call_id` and
-- `content` for a tool's result; `context`: JSON of what was attached to a person's message.
CREATE TABLE chat_messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    content         TEXT NOT NULL,
    context         TEXT,
    tool_calls      TEXT,
    tool_call_id    TEXT,
    state           TEXT NOT NULL,
    error           TEXT,
    created_ms      BIGINT NOT NULL
);
CREATE INDEX chat_messages_conversation ON chat_messages(conversation_id, id);
