-- The chain watchers page through invoices by (position, invoice id): the
-- invoices projected before 0015 all have position 0/0, and are told
-- apart by their id (#23).
DROP INDEX invoices_asset_created_position;
CREATE INDEX invoices_asset_created_position ON invoices (asset, created_commit, created_prepare, invoice_id);
