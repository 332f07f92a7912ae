-- Terminal session recordings (asciicast v2 files in the data folder, named by id), made
-- while a workspace's `record_terminals` is on.
CREATE TABLE recordings (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    server_id       TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    term_id         BIGINT NOT NULL,
    -- Who opened the terminal (`user:<id>` or `token:<id>`).
    started_by      TEXT NOT NULL,
    started_ms      BIGINT NOT NULL,
    ended_ms        BIGINT,
    -- Output bytes recorded.
    bytes           BIGINT NOT NULL DEFAULT 0,
    cols            BIGINT NOT NULL,
    rows            BIGINT NOT NULL
);
CREATE INDEX recordings_workspace ON recordings(workspace_id, started_ms);
