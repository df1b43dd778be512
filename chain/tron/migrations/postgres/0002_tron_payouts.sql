-- The payout transactions the TRON sender built (the latest build of each
-- payout): what the network is estimated to burn in TRX for it. For a
-- TRC-20 payout without a price source the fee in the token is 0 and this
-- table is where the TRX cost is booked.
CREATE TABLE tron_payout_txs (
    payout_id        TEXT PRIMARY KEY,
    txid             TEXT NOT NULL,
    asset            TEXT NOT NULL,
    to_address       TEXT NOT NULL,
    amount           TEXT NOT NULL,
    network_fee      TEXT NOT NULL,
    fee_trx          TEXT NOT NULL,
    energy           BIGINT NOT NULL,
    bandwidth_bytes  BIGINT NOT NULL,
    fee_limit_sun    BIGINT NOT NULL,
    expiration_ms    BIGINT NOT NULL,
    built_at         BIGINT NOT NULL
);
