-- The Ethereum payout sender's own records (see sender.go).
--
-- eth_txs: every transaction a sender signed, one per (from, nonce), kept
-- before it is broadcast so that a nonce is never used for two different
-- transactions and a restart rebroadcasts the same bytes. purpose: payout
-- (ref: payout id), topup (gas sent by the hot wallet to a deposit
-- address; ref: sweep id) or sweep (a deposit address sending to the hot
-- wallet; ref: sweep id). value_units: what the transaction moves of asset
-- (wei for ETH, token base units). max_fee_wei: gas limit × fee cap, the
-- most the network can take; fee_paid_wei: gas used × effective price,
-- once the receipt is seen ('' before).
CREATE TABLE eth_txs (
    from_address TEXT NOT NULL,
    nonce        BIGINT NOT NULL,
    txid         TEXT NOT NULL UNIQUE,
    raw          TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    ref          TEXT NOT NULL,
    asset        TEXT NOT NULL,
    value_units  TEXT NOT NULL,
    max_fee_wei  TEXT NOT NULL,
    fee_paid_wei TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (from_address, nonce)
);
CREATE INDEX eth_txs_ref ON eth_txs (purpose, ref);

-- eth_sweeps: moving a deposit address's balance of one asset into the
-- hot wallet, one row per round. state: topup (waiting for the gas the hot
-- wallet sent), transfer (the deposit address's transfer is out), done,
-- failed. topup_wei: ETH the hot wallet sent for gas; gas_cost_wei: what
-- the sweep cost the hot wallet in ETH, set when done (top-ups and their
-- fees for a token; the transfer's fee for ETH, paid from the swept ETH).
CREATE TABLE eth_sweeps (
    sweep_id      TEXT PRIMARY KEY,
    asset         TEXT NOT NULL,
    address       TEXT NOT NULL,
    hd_index      BIGINT NOT NULL,
    round         INTEGER NOT NULL,
    amount_units  TEXT NOT NULL,
    state         TEXT NOT NULL,
    topup_txids   TEXT NOT NULL DEFAULT '',
    transfer_txid TEXT NOT NULL DEFAULT '',
    topup_wei     TEXT NOT NULL DEFAULT '0',
    gas_cost_wei  TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX eth_sweeps_address ON eth_sweeps (asset, address, round);
