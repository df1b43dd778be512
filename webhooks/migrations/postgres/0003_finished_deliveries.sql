-- Issue #23: the delivery log is pruned of finished deliveries past the
-- retention (Worker.Prune); this index finds them, oldest first, without
-- reading the whole log.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (updated_at, delivery_id) WHERE status <> 'pending';
