-- Webhook deliveries. Times are Unix ms.
-- The subscriber's own checkpoint: the log position it has turned into
-- deliveries, and the next delivery sequence number (log order).
CREATE TABLE webhook_checkpoint (
    name       TEXT PRIMARY KEY,
    position   TEXT NOT NULL,
    next_seq   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO webhook_checkpoint (name, position, next_seq, updated_at) VALUES ('deliveries', '0/0', 1, 0);

CREATE TABLE webhook_deliveries (
    delivery_id     TEXT PRIMARY KEY,
    seq             INTEGER NOT NULL UNIQUE,
    event_id        TEXT NOT NULL,
    event_position  TEXT NOT NULL,
    merchant_id     TEXT NOT NULL,
    invoice_id      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    body            BLOB NOT NULL,
    status          TEXT NOT NULL,
    attempt_count   INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_invoice_pending ON webhook_deliveries (invoice_id, seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_invoice ON webhook_deliveries (invoice_id, seq);
CREATE INDEX webhook_deliveries_merchant ON webhook_deliveries (merchant_id, seq);
CREATE INDEX webhook_deliveries_merchant_status ON webhook_deliveries (merchant_id, status, seq);

CREATE TABLE webhook_attempts (
    delivery_id   TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    status_code   INTEGER,
    error         TEXT NOT NULL DEFAULT '',
    latency_ms    INTEGER NOT NULL,
    response_body TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, attempt)
);
