-- The hash chain (eventstore/chain.go): each event's chain_hash is the
-- SHA-256 of the previous event's and its own stored fields, in
-- global_position order (the chain's sequence number on SQLite). The
-- writer computes it at append; Open fills it for rows written before this
-- migration (backfillChain).
ALTER TABLE events ADD COLUMN chain_hash BLOB;
