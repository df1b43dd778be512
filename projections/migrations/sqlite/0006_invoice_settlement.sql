-- Money rule 3: where the conversion of an invoice's payments stands
-- ('' none, waiting_for_price, unconverted), since when, and why.
ALTER TABLE invoices ADD COLUMN settlement_status TEXT NOT NULL DEFAULT '';
ALTER TABLE invoices ADD COLUMN settlement_since BIGINT;
ALTER TABLE invoices ADD COLUMN settlement_reason TEXT NOT NULL DEFAULT '';
