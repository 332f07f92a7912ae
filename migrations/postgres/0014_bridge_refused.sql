-- Why the server's bridge was last turned away at its handshake (no protocol in common),
-- until it connects again: the dashboard says what to update.
ALTER TABLE servers ADD COLUMN refused TEXT;
