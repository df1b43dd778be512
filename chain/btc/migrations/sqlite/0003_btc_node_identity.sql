-- The Bitcoin node's identity (#16): the first one seen, which every later
-- node must have (a node of another chain is never scanned: its blocks
-- would look like a reorg and revert paid deposits), and why scanning
-- stopped while a node does not match ('' while it does). One row, id 1;
-- times are Unix ms.
CREATE TABLE chain_btc_node_identity (
    id          INTEGER PRIMARY KEY,
    identity    TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    mismatch    TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
