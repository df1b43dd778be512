-- The hash chain (eventstore/chain.go). chain_seq is the chain's own order:
-- the order in which append transactions move chain_head, which they do
-- under its row lock, so it is the order they commit in (global positions
-- are taken earlier and may commit in another order). Migrate fills both
-- columns for rows written before this migration (chainExisting).
ALTER TABLE events ADD COLUMN chain_seq bigint, ADD COLUMN chain_hash bytea;
CREATE UNIQUE INDEX events_chain_seq_key ON events (chain_seq);

-- The last link. Every append moves it from the seq it read, in the
-- transaction of its insert; an append whose seq is stale (another process
-- appended) inserts nothing and is decided again.
CREATE TABLE chain_head (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq      bigint  NOT NULL,
    hash     bytea   NOT NULL
);
INSERT INTO chain_head (seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'));

-- The rows Migrate still has to chain: empty once it has, so the check on
-- every start reads nothing.
CREATE INDEX events_unchained_idx ON events (transaction_id, global_position) WHERE chain_seq IS NULL;
