-- Teams, their members and roles, workspaces (which hold servers), and invitations by link.
-- Every server belongs to a workspace; every request on a server checks the caller's role in
-- the team that owns the workspace.

CREATE TABLE teams (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    created_ms      BIGINT NOT NULL
);

CREATE TABLE team_members (
    team_id         TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    joined_ms       BIGINT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members(user_id);

-- Quotas are NULL when unlimited. A deleted workspace (deleted_ms set) hides its servers
-- until it is restored.
CREATE TABLE workspaces (
    id              TEXT PRIMARY KEY,
    team_id         TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    deleted_ms      BIGINT,
    record_terminals BOOLEAN NOT NULL DEFAULT FALSE,
    max_servers     BIGINT,
    max_projects    BIGINT,
    max_terminals   BIGINT,
    max_agents      BIGINT
);
CREATE INDEX workspaces_team ON workspaces(team_id);

-- An invitation is a single-use link that expires; only the SHA-256 of its secret is kept.
CREATE TABLE invitations (
    id              TEXT PRIMARY KEY,
    team_id         TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    token_hash      TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    created_by      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_ms      BIGINT NOT NULL,
    expires_ms      BIGINT NOT NULL,
    used_ms         BIGINT,
    used_by         TEXT REFERENCES users(id) ON DELETE SET NULL,
    revoked_ms      BIGINT
);
CREATE INDEX invitations_team ON invitations(team_id);

ALTER TABLE servers ADD COLUMN workspace_id TEXT REFERENCES workspaces(id);
ALTER TABLE enrollment_tokens ADD COLUMN workspace_id TEXT REFERENCES workspaces(id);
-- An API token may be limited to one workspace (NULL: every workspace of its user).
ALTER TABLE api_tokens ADD COLUMN workspace_id TEXT REFERENCES workspaces(id);
ALTER TABLE audit_events ADD COLUMN workspace_id TEXT;

-- Existing installations: each user gets a team of their own, which they own, with one
-- workspace; their servers and pending enrolment tokens move there.
INSERT INTO teams (id, name, created_ms) SELECT 'team-' || id, username, created_ms FROM users;
INSERT INTO team_members (team_id, user_id, role, joined_ms)
    SELECT 'team-' || id, id, 'owner', created_ms FROM users;
INSERT INTO workspaces (id, team_id, name, created_ms) SELECT 'ws-' || id, 'team-' || id, 'Default', created_ms FROM users;
UPDATE servers SET workspace_id = 'ws-' || owner_id;
UPDATE enrollment_tokens SET workspace_id = 'ws-' || created_by;
