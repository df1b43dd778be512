-- Payments whose conversion waits for a price (money rule 3), written with
-- the settlement's checkpoint: each is retried on its own with backoff, so
-- one missing price never holds back another payment or merchant.
CREATE TABLE settlement_waits (
    event_id        TEXT PRIMARY KEY,
    position        TEXT NOT NULL,
    data            TEXT NOT NULL,
    since           BIGINT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT NOT NULL,
    seq             BIGINT NOT NULL -- insertion (log) order: ties of next_attempt_at go oldest first
);
CREATE INDEX settlement_waits_due ON settlement_waits (next_attempt_at);
