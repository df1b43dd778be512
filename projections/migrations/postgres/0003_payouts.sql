-- Money out. reserved: requested payouts not yet confirmed or failed.
-- credited: every posting to available except the debits the merchant's
-- funds streams decide (payout requests, conversions out), which is what a
-- withdrawal is checked against. Before this migration only deposits moved
-- money, so everything available had been credited.
ALTER TABLE balances ADD COLUMN reserved TEXT NOT NULL DEFAULT '0';
ALTER TABLE balances ADD COLUMN credited TEXT NOT NULL DEFAULT '0';
UPDATE balances SET credited = available;

-- Payouts: instant ones and withdrawals. status is requested, signed
-- (shown as requested), sent, confirmed or failed. request_stream and
-- request_version locate the PayoutRequested in the log.
CREATE TABLE payouts (
    payout_id         TEXT PRIMARY KEY,
    merchant_id       TEXT NOT NULL,
    asset             TEXT NOT NULL,
    kind              TEXT NOT NULL,
    amount            TEXT NOT NULL,
    to_address        TEXT NOT NULL,
    status            TEXT NOT NULL,
    txid              TEXT NOT NULL DEFAULT '',
    network_fee       TEXT NOT NULL DEFAULT '',
    sent_amount       TEXT NOT NULL DEFAULT '',
    source_invoice_id TEXT NOT NULL DEFAULT '',
    failure_reason    TEXT NOT NULL DEFAULT '',
    request_stream    TEXT NOT NULL,
    request_version   BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    sent_at           BIGINT,
    confirmed_at      BIGINT,
    failed_at         BIGINT,
    updated_at        BIGINT NOT NULL
);
-- Payout ids sort by creation time: newest first is id descending.
CREATE INDEX payouts_merchant ON payouts (merchant_id, payout_id);
