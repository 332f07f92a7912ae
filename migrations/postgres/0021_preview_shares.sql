-- Previews shared beyond the server's developers: with the members of its workspace, or by
-- a public link (only its secret's hash is kept, and an optional password's hash), until
-- they expire or are revoked. Their traffic is counted here, added to by every replica.
CREATE TABLE preview_shares (
    id              TEXT PRIMARY KEY,
    server_id       TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    port            BIGINT NOT NULL,
    level           TEXT NOT NULL,
    secret_hash     TEXT UNIQUE,
    password_hash   TEXT,
    created_by      TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    expires_ms      BIGINT,
    revoked_ms      BIGINT,
    visits          BIGINT NOT NULL DEFAULT 0,
    requests        BIGINT NOT NULL DEFAULT 0,
    bytes           BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX preview_shares_port ON preview_shares(server_id, port);
