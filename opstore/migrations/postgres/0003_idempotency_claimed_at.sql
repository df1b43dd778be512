-- A key keeps the time of its first claim (created_at) across a release, so
-- that the command id derived from it, and the ids of what the command
-- creates, are the same for every retry; claimed_at is the current claim's
-- time, for its lease. A released key is kept (state 'released') until it
-- expires.
ALTER TABLE idempotency_keys ADD COLUMN claimed_at BIGINT;
UPDATE idempotency_keys SET claimed_at = created_at;
