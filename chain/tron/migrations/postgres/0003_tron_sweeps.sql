-- tron_sweeps: moving a deposit address's balance of one asset into the
-- hot wallet, one row per round (see sweep.go). state: topup (the address
-- is being given TRX for its transfer's energy and bandwidth), transfer
-- (its transfer to the hot wallet is out), done, failed, empty (nothing
-- worth sweeping was there: it marks the deposits before it as seen to).
-- pending_txid and pending_raw are the signed transaction in flight (a
-- top-up from the hot wallet, or the transfer), stored before it is
-- broadcast so a restart rebroadcasts the same bytes. topup_sun: TRX the
-- hot wallet sent the address; burned_sun: TRX the network burned for the
-- sweep (top-ups' and the transfer's fees, from their receipts): its cost.
CREATE TABLE tron_sweeps (
    sweep_id      TEXT PRIMARY KEY,
    asset         TEXT NOT NULL,
    address       TEXT NOT NULL,
    hd_index      BIGINT NOT NULL,
    round         BIGINT NOT NULL,
    amount_units  TEXT NOT NULL,
    state         TEXT NOT NULL,
    topup_txids   TEXT NOT NULL DEFAULT '',
    transfer_txid TEXT NOT NULL DEFAULT '',
    pending_txid  TEXT NOT NULL DEFAULT '',
    pending_raw   TEXT NOT NULL DEFAULT '',
    topup_sun     BIGINT NOT NULL DEFAULT 0,
    burned_sun    BIGINT NOT NULL DEFAULT 0,
    energy        BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX tron_sweeps_address ON tron_sweeps (address, asset, round);
