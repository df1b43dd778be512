-- Read models. Amounts are canonical decimal strings (exact); times are Unix ms.
CREATE TABLE projection_checkpoints (
    name       TEXT PRIMARY KEY,
    position   TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE merchants (
    merchant_id     TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    publishable_key TEXT NOT NULL UNIQUE,
    secret_key_hash TEXT NOT NULL UNIQUE,
    webhook_url     TEXT NOT NULL DEFAULT '',
    webhook_secret  TEXT NOT NULL,
    consolidate_to  TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL
);

CREATE TABLE payout_settings (
    merchant_id        TEXT NOT NULL,
    asset              TEXT NOT NULL,
    payout_address     TEXT NOT NULL,
    mode               TEXT NOT NULL,
    instant_min_amount TEXT NOT NULL,
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, asset)
);

CREATE TABLE invoices (
    invoice_id             TEXT PRIMARY KEY,
    merchant_id            TEXT NOT NULL,
    asset                  TEXT NOT NULL,
    status                 TEXT NOT NULL,
    amount                 TEXT NOT NULL,
    pay_amount             TEXT NOT NULL,
    pay_address            TEXT NOT NULL,
    fee                    TEXT NOT NULL,
    fee_bps                INTEGER NOT NULL,
    settle_asset           TEXT NOT NULL DEFAULT '',
    order_id               TEXT NOT NULL DEFAULT '',
    amount_received        TEXT NOT NULL DEFAULT '0',
    required_confirmations INTEGER NOT NULL,
    created_at             INTEGER NOT NULL,
    expires_at             INTEGER NOT NULL,
    paid_at                INTEGER,
    updated_at             INTEGER NOT NULL
);
-- Invoice ids sort by creation time: newest first is id descending.
CREATE INDEX invoices_merchant ON invoices (merchant_id, invoice_id);
CREATE INDEX invoices_merchant_status ON invoices (merchant_id, status, invoice_id);
CREATE INDEX invoices_due ON invoices (status, expires_at);
CREATE INDEX invoices_address ON invoices (pay_address);

CREATE TABLE payments (
    invoice_id    TEXT NOT NULL,
    deposit_id    TEXT NOT NULL,
    txid          TEXT NOT NULL,
    amount        TEXT NOT NULL,
    confirmations INTEGER NOT NULL,
    status        TEXT NOT NULL,
    late          INTEGER NOT NULL,
    detected_at   INTEGER NOT NULL,
    PRIMARY KEY (invoice_id, deposit_id)
);

CREATE TABLE balances (
    merchant_id TEXT NOT NULL,
    asset       TEXT NOT NULL,
    available   TEXT NOT NULL,
    pending     TEXT NOT NULL,
    PRIMARY KEY (merchant_id, asset)
);
