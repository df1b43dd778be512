-- Payouts by status, kept by the payouts projector in the transaction that
-- changes them (issue #23), as invoice_status_counts are for invoices: the
-- picd_payouts gauge grouped every payout at each scrape, a cost that grew
-- with the history (70,000 payouts in a 10M-event store).
CREATE TABLE payout_status_counts (
    status TEXT PRIMARY KEY,
    n      BIGINT NOT NULL
);
INSERT INTO payout_status_counts (status, n) SELECT status, count(*) FROM payouts GROUP BY status;
