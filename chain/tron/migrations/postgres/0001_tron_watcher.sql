-- The TRON watcher's own state: where it has scanned to, the ids of recent
-- blocks (to detect reorgs), and the deposits it reported.
CREATE TABLE tron_scan_checkpoint (
    id         INTEGER PRIMARY KEY,
    height     BIGINT NOT NULL,
    block_id   TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE tron_blocks (
    height   BIGINT PRIMARY KEY,
    block_id TEXT NOT NULL
);

-- state: seen (in a canonical block), orphaned (its block left the chain,
-- not yet seen again), reverted (reported to the ledger as gone), unmatched
-- (no invoice of that asset on the address: logged, kept here).
CREATE TABLE tron_deposits (
    deposit_id             TEXT PRIMARY KEY,
    asset                  TEXT NOT NULL,
    address                TEXT NOT NULL,
    txid                   TEXT NOT NULL,
    amount                 TEXT NOT NULL,
    invoice_id             TEXT NOT NULL,
    required_confirmations BIGINT NOT NULL,
    block_height           BIGINT NOT NULL,
    block_id               TEXT NOT NULL,
    state                  TEXT NOT NULL,
    confirmed              BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX tron_deposits_state ON tron_deposits (state, confirmed, block_height);
