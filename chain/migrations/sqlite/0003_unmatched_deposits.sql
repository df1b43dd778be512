-- Payments to one of our addresses that no invoice of their asset takes
-- (a token sent to an ETH invoice's address, ETH to a token invoice's):
-- kept for an operator's decision, never dropped. status: open (waiting),
-- crediting (being credited to invoice_id), credited, sweep (to move to
-- the hot wallet), ignored (note says why). output_index: the output or
-- log index, -1 for a native transfer (the transaction is the deposit).
CREATE TABLE chain_unmatched_deposits (
    id           INTEGER PRIMARY KEY,
    chain        TEXT NOT NULL,
    deposit_id   TEXT NOT NULL,
    txid         TEXT NOT NULL,
    output_index BIGINT NOT NULL,
    address      TEXT NOT NULL,
    asset        TEXT NOT NULL,
    amount       TEXT NOT NULL,
    block_height BIGINT NOT NULL,
    block_hash   TEXT NOT NULL,
    reason       TEXT NOT NULL,
    found_at     BIGINT NOT NULL,
    status       TEXT NOT NULL,
    invoice_id   TEXT NOT NULL DEFAULT '',
    note         TEXT NOT NULL DEFAULT '',
    decided_at   BIGINT NOT NULL DEFAULT 0,
    UNIQUE (chain, deposit_id)
);
CREATE INDEX chain_unmatched_deposits_status ON chain_unmatched_deposits (status, asset);
