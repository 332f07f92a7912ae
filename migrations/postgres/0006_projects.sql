-- Projects: a folder on a server of a workspace, made empty, from a starter, or by git clone.
-- `source` is `empty`, `template:<name>` or `git`; `repo_url` is the clone URL without any
-- credentials. A deleted project (deleted_ms set) is hidden until restored; its folder stays.
CREATE TABLE projects (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    server_id       TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    path            TEXT NOT NULL,
    source          TEXT NOT NULL,
    repo_url        TEXT,
    created_by      TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    deleted_ms      BIGINT
);
CREATE INDEX projects_workspace ON projects(workspace_id);
-- One live project per folder on a server.
CREATE UNIQUE INDEX projects_path ON projects(server_id, path) WHERE deleted_ms IS NULL;
