-- The simulator runs on the scan engine (chain/scan) like a real chain:
-- transfers are mined at a height (NULL: in the mempool), a reorg replaces
-- block ids (sim_blocks holds the replaced ones; the others derive from the
-- chain and height), and each simulated chain has the engine's three
-- tables: sim_<chain>_scan_checkpoint, sim_<chain>_blocks, sim_<chain>_deposits.
-- Transfer states: pending (seen by the ledger), mempool (back in the
-- mempool after a reorg: to be seen again), dropped (gone in a reorg).
ALTER TABLE sim_transfers ADD COLUMN height BIGINT;
UPDATE sim_transfers SET height = (SELECT c.height FROM sim_chains c WHERE c.chain = sim_transfers.chain) - confirmations + 1
    WHERE confirmations > 0 AND state <> 'reverted';
UPDATE sim_transfers SET state = 'dropped' WHERE state = 'reverted';
UPDATE sim_transfers SET state = 'pending' WHERE state IN ('confirmed', 'final');
CREATE INDEX sim_transfers_height ON sim_transfers (chain, height);

CREATE TABLE sim_blocks (
    chain  TEXT NOT NULL,
    height BIGINT NOT NULL,
    hash   TEXT NOT NULL,
    PRIMARY KEY (chain, height)
);

CREATE TABLE sim_bitcoin_scan_checkpoint (
    id         INTEGER PRIMARY KEY,
    height     BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE sim_bitcoin_blocks (
    height BIGINT PRIMARY KEY,
    hash   TEXT NOT NULL
);
CREATE TABLE sim_bitcoin_deposits (
    deposit_id             TEXT PRIMARY KEY,
    asset                  TEXT NOT NULL,
    address                TEXT NOT NULL,
    txid                   TEXT NOT NULL,
    amount                 TEXT NOT NULL,
    invoice_id             TEXT NOT NULL,
    required_confirmations BIGINT NOT NULL,
    block_height           BIGINT NOT NULL,
    block_hash             TEXT NOT NULL,
    state                  TEXT NOT NULL,
    confirmed              BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX sim_bitcoin_deposits_state ON sim_bitcoin_deposits (state, confirmed, block_height);

CREATE TABLE sim_ethereum_scan_checkpoint (
    id         INTEGER PRIMARY KEY,
    height     BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE sim_ethereum_blocks (
    height BIGINT PRIMARY KEY,
    hash   TEXT NOT NULL
);
CREATE TABLE sim_ethereum_deposits (
    deposit_id             TEXT PRIMARY KEY,
    asset                  TEXT NOT NULL,
    address                TEXT NOT NULL,
    txid                   TEXT NOT NULL,
    amount                 TEXT NOT NULL,
    invoice_id             TEXT NOT NULL,
    required_confirmations BIGINT NOT NULL,
    block_height           BIGINT NOT NULL,
    block_hash             TEXT NOT NULL,
    state                  TEXT NOT NULL,
    confirmed              BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX sim_ethereum_deposits_state ON sim_ethereum_deposits (state, confirmed, block_height);

CREATE TABLE sim_tron_scan_checkpoint (
    id         INTEGER PRIMARY KEY,
    height     BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE sim_tron_blocks (
    height BIGINT PRIMARY KEY,
    hash   TEXT NOT NULL
);
CREATE TABLE sim_tron_deposits (
    deposit_id             TEXT PRIMARY KEY,
    asset                  TEXT NOT NULL,
    address                TEXT NOT NULL,
    txid                   TEXT NOT NULL,
    amount                 TEXT NOT NULL,
    invoice_id             TEXT NOT NULL,
    required_confirmations BIGINT NOT NULL,
    block_height           BIGINT NOT NULL,
    block_hash             TEXT NOT NULL,
    state                  TEXT NOT NULL,
    confirmed              BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX sim_tron_deposits_state ON sim_tron_deposits (state, confirmed, block_height);
