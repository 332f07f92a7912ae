-- Work one replica does for others to see, held by a lease it renews: when the replica dies,
-- the lease runs out and any replica may take the work over or end it.
--
-- The answer being written in a conversation (one at a time), by which replica (a name it
-- picks at start), until when unless renewed.
CREATE TABLE chat_runs (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    holder          TEXT NOT NULL,
    until_ms        BIGINT NOT NULL
);
CREATE INDEX chat_runs_holder ON chat_runs(holder);
-- What a writer has not finished, looked for when writers go away (a few rows at most).
CREATE INDEX chat_messages_unfinished ON chat_messages(conversation_id) WHERE state IN ('streaming', 'waiting');
-- MCP sessions (the client's `initialize` parameters, as rmcp keeps them), so that a
-- session begun on one replica goes on at another.
CREATE TABLE mcp_sessions (
    id              TEXT PRIMARY KEY,
    state           TEXT NOT NULL,
    used_ms         BIGINT NOT NULL
);
CREATE INDEX mcp_sessions_used ON mcp_sessions(used_ms);
