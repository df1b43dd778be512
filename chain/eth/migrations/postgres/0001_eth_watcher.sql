-- The Ethereum watcher's own state: where it has scanned to, the hashes of
-- recent blocks (to detect reorgs), and the deposits it reported.
CREATE TABLE eth_scan_checkpoint (
    id         INTEGER PRIMARY KEY,
    height     BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE eth_blocks (
    height BIGINT PRIMARY KEY,
    hash   TEXT NOT NULL
);

-- state: seen (in a canonical block), orphaned (its block left the chain,
-- not yet seen again), reverted (reported to the ledger as gone), unmatched
-- (no invoice of that asset on the address: logged, kept here).
CREATE TABLE eth_deposits (
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
CREATE INDEX eth_deposits_state ON eth_deposits (state, confirmed, block_height);
