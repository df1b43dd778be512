-- Webhook deliveries. Times are Unix ms.
-- The subscriber's own checkpoint: the log position it has turned into
-- deliveries, and the next delivery sequence number (log order).
CREATE TABLE webhook_checkpoint (
    name       TEXT PRIMARY KEY,
    position   TEXT NOT NULL,
    next_seq   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO webhook_checkpoint (name, position, next_seq, updated_at) VALUES ('deliveries', '0/0', 1, 0);

CREATE TABLE webhook_deliveries (
    delivery_id     TEXT PRIMARY KEY,
    seq             BIGINT NOT NULL UNIQUE,
    event_id        TEXT NOT NULL,
    event_position  TEXT NOT NULL,
    merchant_id     TEXT NOT NULL,
    invoice_id      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    body            BYTEA NOT NULL,
    status          TEXT NOT NULL,
    attempt_count   BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_invoice_pending ON webhook_deliveries (invoice_id, seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_invoice ON webhook_deliveries (invoice_id, seq);
CREATE INDEX webhook_deliveries_merchant ON webhook_deliveries (merchant_id, seq);
CREATE INDEX webhook_deliveries_merchant_status ON webhook_deliveries (merchant_id, status, seq);

CREATE TABLE webhook_attempts (
    delivery_id   TEXT NOT NULL,
    attempt       BIGINT NOT NULL,
    at            BIGINT NOT NULL,
    status_code   BIGINT,
    error         TEXT NOT NULL DEFAULT '',
    latency_ms    BIGINT NOT NULL,
    response_body TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, attempt)
);
