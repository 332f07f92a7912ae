-- Porta's first schema. Types are chosen so the PostgreSQL dialect can follow unchanged in
-- meaning: TEXT ids (UUIDs), BIGINT Unix milliseconds, BOOLEAN flags.
-- Never edit an applied migration; add a new one.

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    is_admin        BOOLEAN NOT NULL DEFAULT FALSE,
    -- Bumped to invalidate every access token of the user (e.g. on a password change).
    token_version   BIGINT NOT NULL DEFAULT 0,
    created_ms      BIGINT NOT NULL
);

-- Refresh tokens rotate on every use; a family is one sign-in's chain of tokens.
CREATE TABLE refresh_tokens (
    id              TEXT PRIMARY KEY,
    family_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash      TEXT NOT NULL UNIQUE,
    created_ms      BIGINT NOT NULL,
    expires_ms      BIGINT NOT NULL,
    used_ms         BIGINT,
    revoked_ms      BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

CREATE TABLE servers (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    owner_id        TEXT NOT NULL REFERENCES users(id),
    credential_hash TEXT UNIQUE,
    created_ms      BIGINT NOT NULL,
    last_seen_ms    BIGINT,
    agent           TEXT,
    os              TEXT,
    kernel          TEXT,
    arch            TEXT,
    hostname        TEXT,
    revoked_ms      BIGINT
);

CREATE TABLE enrollment_tokens (
    token_hash      TEXT PRIMARY KEY,
    created_by      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name            TEXT,
    created_ms      BIGINT NOT NULL,
    expires_ms      BIGINT NOT NULL,
    used_ms         BIGINT,
    server_id       TEXT
);

CREATE TABLE audit_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms           BIGINT NOT NULL,
    actor           TEXT,
    action          TEXT NOT NULL,
    target          TEXT,
    result          TEXT NOT NULL,
    detail          TEXT
);
CREATE INDEX audit_events_at ON audit_events(at_ms);
