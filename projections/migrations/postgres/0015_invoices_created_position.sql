-- The log position of each invoice's InvoiceCreated (#23): the chain
-- watchers read the addresses of new invoices after the last position they
-- read, per asset, instead of every invoice created in the last minutes on
-- every scan. Rows from before this column keep 0/0: a watcher's first read
-- starts below it. A rebuild gives them their positions.
ALTER TABLE invoices ADD COLUMN created_commit BIGINT NOT NULL DEFAULT 0;
ALTER TABLE invoices ADD COLUMN created_prepare BIGINT NOT NULL DEFAULT 0;
CREATE INDEX invoices_asset_created_position ON invoices (asset, created_commit, created_prepare);
