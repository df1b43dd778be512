-- Issue #17: webhook secrets are sealed (webhooks.SecretBox) in the log and
-- here; webhook_secret keeps only the clear secret of a log from before
-- sealing, until picd re-keys it at start. webhook_secret_exposed is 1 while
-- the live secret is one that some event holds in clear (the merchant
-- should rotate it).
ALTER TABLE merchants ADD COLUMN webhook_secret_sealed TEXT NOT NULL DEFAULT '';
ALTER TABLE merchants ADD COLUMN webhook_secret_exposed INTEGER NOT NULL DEFAULT 0;
UPDATE merchants SET webhook_secret_exposed = 1 WHERE webhook_secret <> '';
