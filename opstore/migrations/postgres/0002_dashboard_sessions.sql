-- The dashboard's sessions. IF NOT EXISTS: before opstore, httpapi created
-- this table at start; that table is kept as it is.
CREATE TABLE IF NOT EXISTS dashboard_sessions (
    id          TEXT PRIMARY KEY,        -- hex SHA-256 of the cookie's session id
    merchant_id TEXT NOT NULL,
    key_hash    TEXT NOT NULL,           -- hash of the secret key it signed in with
    created_at  BIGINT NOT NULL,           -- Unix ms
    expires_at  BIGINT NOT NULL            -- Unix ms
);
CREATE INDEX IF NOT EXISTS dashboard_sessions_merchant ON dashboard_sessions (merchant_id);
CREATE INDEX IF NOT EXISTS dashboard_sessions_expires_at ON dashboard_sessions (expires_at);
