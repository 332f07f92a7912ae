-- Single-use WebSocket tickets (30 s), by the SHA-256 of their secret: in the database, so a
-- ticket asked of one replica opens a socket on another. `access` is how the request that
-- asked for it was signed in (JSON).
CREATE TABLE ws_tickets (
    hash            TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    access          TEXT NOT NULL,
    expires_ms      BIGINT NOT NULL
);
CREATE INDEX ws_tickets_expires ON ws_tickets(expires_ms);
