-- Which kind of API key created the invoice: 'secret_key' or
-- 'publishable_key' (issue #17). Invoices projected before this column
-- existed were recorded without it and read as the secret key's, as
-- InvoiceCreated events without created_by do.
ALTER TABLE invoices ADD COLUMN created_by TEXT NOT NULL DEFAULT 'secret_key';
