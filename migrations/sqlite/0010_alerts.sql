-- Alerting: where notifications go, the rules that raise alerts, what fired, and every
-- attempt to tell someone.

-- A notification channel of a workspace. `kind` is webhook, slack, discord or telegram;
-- `config_sealed` its settings as JSON (URLs and tokens are secrets), sealed with the
-- instance's secrets key and bound to the workspace; `hint` says where it goes without them.
CREATE TABLE alert_channels (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    config_sealed   TEXT NOT NULL,
    hint            TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_ms      BIGINT NOT NULL
);
CREATE INDEX alert_channels_workspace ON alert_channels(workspace_id);

-- A rule: on one server, or (server_id NULL) on every server of the workspace. `kind`
-- threshold compares `metric` with `threshold` (`comparison` one of > >= < <=) and fires
-- when it has held for `for_secs`; offline fires when the server has been offline that long.
-- After firing, the rule stays quiet on that server for `cooldown_secs`. `channels` is a JSON
-- array of channel ids.
CREATE TABLE alert_rules (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    server_id       TEXT REFERENCES servers(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    metric          TEXT,
    comparison      TEXT,
    threshold       REAL,
    for_secs        BIGINT NOT NULL,
    severity        TEXT NOT NULL,
    cooldown_secs   BIGINT NOT NULL,
    channels        TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL,
    created_by      TEXT NOT NULL,
    created_ms      BIGINT NOT NULL
);
CREATE INDEX alert_rules_workspace ON alert_rules(workspace_id);

-- An alert: a rule fired on a server (state firing), and later resolved. The history outlives
-- its rule, so the rule's name is kept with it.
CREATE TABLE alert_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id         TEXT NOT NULL,
    rule_name       TEXT NOT NULL,
    workspace_id    TEXT NOT NULL,
    server_id       TEXT NOT NULL,
    severity        TEXT NOT NULL,
    state           TEXT NOT NULL,
    value           REAL,
    message         TEXT NOT NULL,
    fired_ms        BIGINT NOT NULL,
    resolved_ms     BIGINT
);
CREATE INDEX alert_events_workspace ON alert_events(workspace_id, fired_ms);
CREATE INDEX alert_events_firing ON alert_events(state) WHERE state = 'firing';

-- Each notification sent (or given up on), with its attempts; `event_id` is NULL for a
-- channel's "send test".
CREATE TABLE alert_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id      TEXT NOT NULL REFERENCES alert_channels(id) ON DELETE CASCADE,
    event_id        INTEGER REFERENCES alert_events(id) ON DELETE CASCADE,
    transition      TEXT NOT NULL,
    ok              BOOLEAN NOT NULL,
    attempts        INTEGER NOT NULL,
    detail          TEXT NOT NULL,
    at_ms           BIGINT NOT NULL
);
CREATE INDEX alert_deliveries_channel ON alert_deliveries(channel_id, at_ms);
