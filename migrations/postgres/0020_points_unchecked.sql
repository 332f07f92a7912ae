-- Telemetry points no longer check their server with a foreign key on PostgreSQL. The check
-- locks the server's row (FOR KEY SHARE) for every point inserted, which made a batch of 100
-- samples take twice as long, and servers are never deleted (only revoked), so the cascade
-- never ran. Points are written only for a server whose bridge is connected. SQLite keeps
-- its check: there it is an index lookup in the process.
ALTER TABLE metric_points DROP CONSTRAINT IF EXISTS metric_points_server_id_fkey;
