-- Refunds are payouts tied to an invoice (source_invoice_id, kind refund):
-- GET /v1/invoices/{id}/refunds lists them.
CREATE INDEX payouts_source_invoice ON payouts (merchant_id, source_invoice_id, payout_id);
