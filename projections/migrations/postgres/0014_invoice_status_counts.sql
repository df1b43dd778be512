-- Invoices by status, kept by the invoices projector in the transaction
-- that changes them (issue #23): the picd_invoices gauge read them with a
-- GROUP BY over every invoice at each scrape, a cost that grew with the
-- history (about 130 ms at 200,000 invoices).
CREATE TABLE invoice_status_counts (
    status TEXT PRIMARY KEY,
    n      BIGINT NOT NULL
);
INSERT INTO invoice_status_counts (status, n) SELECT status, count(*) FROM invoices GROUP BY status;
