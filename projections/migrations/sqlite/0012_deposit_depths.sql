-- Operational tables beside the read models, written by the chain scan
-- engine (chain/scan.DepthTable), never by a projector: a rebuild keeps
-- them. The API counts a payment's confirmations from them block by block
-- (tip - block_height + 1) without an event per block.
-- chain_tips: each scanner's last block scanned completely.
CREATE TABLE chain_tips (
    chain      TEXT PRIMARY KEY,
    height     BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- deposit_depths: the block of each invoice deposit. block_height is NULL
-- while its block is off the chain (a reorg; it is in no block now);
-- final_depth is its depth when it became final, where counting stops
-- (0: not final).
CREATE TABLE deposit_depths (
    invoice_id   TEXT NOT NULL,
    deposit_id   TEXT NOT NULL,
    chain        TEXT NOT NULL,
    block_height BIGINT,
    final_depth  INTEGER NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (invoice_id, deposit_id)
);
CREATE INDEX deposit_depths_chain ON deposit_depths (chain, block_height);
