-- An invoice's merchant details and fiat price (issue #19). metadata is
-- the JSON object of the merchant's keys ('{}' when none); the price
-- columns are '' (price_rate_at 0) for an invoice created in its asset.
-- Invoices projected before these columns existed had none of them.
ALTER TABLE invoices ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE invoices ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE invoices ADD COLUMN redirect_url TEXT NOT NULL DEFAULT '';
ALTER TABLE invoices ADD COLUMN price_currency TEXT NOT NULL DEFAULT '';
ALTER TABLE invoices ADD COLUMN price_amount TEXT NOT NULL DEFAULT '';
ALTER TABLE invoices ADD COLUMN price_rate TEXT NOT NULL DEFAULT '';
ALTER TABLE invoices ADD COLUMN price_source TEXT NOT NULL DEFAULT '';
ALTER TABLE invoices ADD COLUMN price_rate_at BIGINT NOT NULL DEFAULT 0;
