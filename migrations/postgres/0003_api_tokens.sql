-- Personal API tokens: for scripts and agents. Only the SHA-256 of the secret is stored (the
-- secret is 256 random bits, shown once); `scopes` is a comma-separated subset of
-- read, write, terminal, admin.
CREATE TABLE api_tokens (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    secret_hash     TEXT NOT NULL UNIQUE,
    -- The secret's first characters, so people can tell their tokens apart.
    hint            TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    expires_ms      BIGINT,
    last_used_ms    BIGINT,
    revoked_ms      BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
