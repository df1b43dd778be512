-- The chain simulator's state: a height per simulated chain and the
-- simulated transfers with their confirmations.
CREATE TABLE sim_chains (
    chain  TEXT PRIMARY KEY,
    height BIGINT NOT NULL
);

-- state: pending (not yet at its threshold), confirmed, reverted.
CREATE TABLE sim_transfers (
    txid                   TEXT PRIMARY KEY,
    deposit_id             TEXT NOT NULL,
    chain                  TEXT NOT NULL,
    asset                  TEXT NOT NULL,
    address                TEXT NOT NULL,
    invoice_id             TEXT NOT NULL,
    amount                 TEXT NOT NULL,
    confirmations          INTEGER NOT NULL,
    required_confirmations INTEGER NOT NULL,
    state                  TEXT NOT NULL,
    created_at             BIGINT NOT NULL
);
CREATE INDEX sim_transfers_state ON sim_transfers (state, created_at);
