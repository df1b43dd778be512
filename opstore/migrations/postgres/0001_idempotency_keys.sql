-- The first response to each Idempotency-Key. IF NOT EXISTS: before
-- opstore, httpapi created this table at start; that table is kept as it is.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    id          TEXT PRIMARY KEY,        -- hex SHA-256 of scope and key
    claim       TEXT NOT NULL,           -- random token of the request that holds the key
    request_mac TEXT NOT NULL,           -- hex HMAC of the request body under a key-derived key
    state       TEXT NOT NULL,           -- in_progress | done
    status      BIGINT NOT NULL DEFAULT 0,
    response    BYTEA,                   -- nonce || AES-256-GCM(body)
    created_at  BIGINT NOT NULL            -- Unix ms of the claim
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created_at ON idempotency_keys (created_at);
