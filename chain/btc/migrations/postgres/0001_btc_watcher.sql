-- The Bitcoin watcher's own state: where it is, the recent blocks it saw
-- (to detect reorgs by hash), and the deposits it reported (to count
-- confirmations across restarts). Times are Unix ms; amounts satoshis.
CREATE TABLE chain_btc_checkpoint (
    id         INTEGER PRIMARY KEY,
    height     BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE chain_btc_blocks (
    height BIGINT PRIMARY KEY,
    hash   TEXT NOT NULL
);

-- state: pending (reported, not yet credited), confirmed (credited),
-- reverted (undone; seen again it is reported again). block_height 0: not
-- in a block of the best chain (mempool, or orphaned by a reorg).
CREATE TABLE chain_btc_deposits (
    deposit_id    TEXT PRIMARY KEY,
    txid          TEXT NOT NULL,
    invoice_id    TEXT NOT NULL,
    address       TEXT NOT NULL,
    amount_sat    BIGINT NOT NULL,
    block_hash    TEXT NOT NULL DEFAULT '',
    block_height  BIGINT NOT NULL DEFAULT 0,
    state         TEXT NOT NULL,
    missing_polls INTEGER NOT NULL DEFAULT 0,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX chain_btc_deposits_open ON chain_btc_deposits (state, block_height);
