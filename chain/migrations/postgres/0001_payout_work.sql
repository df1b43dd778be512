-- Checkpoints of the chain package's log subscribers: the payout
-- processor's intake and the settlement process manager.
CREATE TABLE chain_checkpoints (
    name       TEXT PRIMARY KEY,
    position   TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Payouts the processor still drives (requested, signed or sent), written
-- with the intake's checkpoint. The log holds the truth; a row only says
-- when to look at the payout next.
CREATE TABLE payout_jobs (
    payout_id       TEXT PRIMARY KEY,
    merchant_id     TEXT NOT NULL,
    asset           TEXT NOT NULL,
    request_version BIGINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL
);
CREATE INDEX payout_jobs_due ON payout_jobs (next_attempt_at);
