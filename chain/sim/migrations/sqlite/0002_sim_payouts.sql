-- Payout transactions the simulated chains carry (sim.Sender): one per
-- payout (a second one would be a double spend), at the height it was
-- broadcast; its depth is the chain's height minus that.
CREATE TABLE sim_payout_txs (
    txid       TEXT PRIMARY KEY,
    payout_id  TEXT NOT NULL UNIQUE,
    chain      TEXT NOT NULL,
    asset      TEXT NOT NULL,
    to_address TEXT NOT NULL,
    amount     TEXT NOT NULL,
    fee        TEXT NOT NULL,
    raw        TEXT NOT NULL,
    height     BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
