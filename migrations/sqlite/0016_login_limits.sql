-- Sign-in throttling (see `auth::ratelimit`), in the database so that every replica counts
-- the same attempts, and a restart does not hand a guesser a fresh allowance.
--
-- Wrong passwords per (account as the lookup sees it, client network): the back-off after
-- five, and how many attempts it refused since it began (audited once, then summed).
CREATE TABLE login_failures (
    account         TEXT NOT NULL,
    network         TEXT NOT NULL,
    failures        BIGINT NOT NULL,
    last_ms         BIGINT NOT NULL,
    until_ms        BIGINT,
    refused         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account, network)
);
CREATE INDEX login_failures_last ON login_failures(last_ms);
-- Attempts per client network in each minute (the minute since the epoch).
CREATE TABLE login_attempts (
    network         TEXT NOT NULL,
    minute          BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    PRIMARY KEY (network, minute)
);
