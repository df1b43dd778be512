-- The dashboard's search (issue #20) finds an invoice by its order id and
-- a payment by its txid through these (with invoices_address for the pay
-- address and the key for the invoice id), instead of reading every
-- invoice of the merchant.
CREATE INDEX invoices_order ON invoices (order_id);
CREATE INDEX payments_txid ON payments (txid);
