-- The chain watchers refresh their watched addresses by creation time.
CREATE INDEX invoices_created ON invoices (created_at);
