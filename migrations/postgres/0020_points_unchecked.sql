-- Telemetry points no longer check their server with a foreign key on PostgreSQL: the check
-- locked the server's row (FOR KEY SHARE) for every point inserted, and a batch of 100
-- samples took twice as long. The insert itself skips points of a server that is gone, and
-- deleting a team deletes its servers' points first (what the cascade did). SQLite keeps
-- its foreign key: there the check is an index lookup in the process.
ALTER TABLE metric_points DROP CONSTRAINT IF EXISTS metric_points_server_id_fkey;
