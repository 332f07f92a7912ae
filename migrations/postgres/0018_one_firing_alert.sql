-- At most one firing alert per (rule, server), whichever replica evaluates: a replica that
-- lost the `alerts` lease without knowing it yet cannot fire (and notify) a second time.
-- Duplicates a past race left are resolved first, keeping the newest.
UPDATE alert_events SET state = 'resolved', resolved_ms = fired_ms
WHERE state = 'firing' AND id NOT IN
    (SELECT MAX(id) FROM alert_events WHERE state = 'firing' GROUP BY rule_id, server_id);
CREATE UNIQUE INDEX alert_events_one_firing ON alert_events(rule_id, server_id) WHERE state = 'firing';
