-- The Bitcoin payout sender's hot wallet (see sender.go). Amounts are
-- satoshis, times Unix ms.
--
-- chain_btc_utxos: outputs the wallet can spend. source: deposit (an
-- output the watcher credited, on a per-invoice address) or change (the
-- change of one of our payouts). state: available; locked (spent, or
-- being spent, by payout_id's transaction); pending (change not yet in a
-- block); missing (the node no longer has it: reorged away or spent
-- elsewhere); void (change of a transaction that can never confirm);
-- foreign (not derived from our HD wallet: cannot be signed).
CREATE TABLE chain_btc_utxos (
    outpoint   TEXT PRIMARY KEY,
    address    TEXT NOT NULL,
    hd_index   BIGINT NOT NULL,
    amount_sat BIGINT NOT NULL,
    source     TEXT NOT NULL,
    state      TEXT NOT NULL,
    payout_id  TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL
);
CREATE INDEX chain_btc_utxos_state ON chain_btc_utxos (state, amount_sat);
CREATE INDEX chain_btc_utxos_payout ON chain_btc_utxos (payout_id);

-- One signed transaction per payout, kept so that a Build repeated after a
-- crash returns the same transaction. state: built, failed (can never
-- confirm; its inputs were released).
CREATE TABLE chain_btc_payouts (
    payout_id    TEXT PRIMARY KEY,
    txid         TEXT NOT NULL UNIQUE,
    raw          TEXT NOT NULL,
    to_address   TEXT NOT NULL,
    amount_sat   BIGINT NOT NULL,
    fee_sat      BIGINT NOT NULL,
    fee_rate     BIGINT NOT NULL,
    change_index BIGINT NOT NULL,
    change_sat   BIGINT NOT NULL,
    dust_sat     BIGINT NOT NULL,
    state        TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
