-- Telemetry: every server's metric series, at five resolutions.
--
-- `res` is the seconds a point summarises: 0 for a raw sample (every few seconds, kept 48 h),
-- 60 (kept 7 days), 600 (kept 30 days), 3600 (kept 90 days), 86400 (kept). `ts` is the sample's time, or the start
-- of the point's period, in Unix milliseconds. `n` is the number of samples a point
-- summarises, and `data` the values of every metric in a fixed order (see
-- backend/src/telemetry/points.rs): raw points hold one value per metric, the others its
-- average, minimum and maximum. The primary key keeps each server's series together and in
-- time order, so a chart is one range read.
CREATE TABLE metric_points (
    server_id   TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    res         BIGINT NOT NULL,
    ts          BIGINT NOT NULL,
    n           BIGINT NOT NULL,
    data        BYTEA NOT NULL,
    PRIMARY KEY (server_id, res, ts)
);
