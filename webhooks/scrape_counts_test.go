package webhooks

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
)

// TestScrapeCountsReadTheirOwnIndexes: the counts picd's /metrics makes at
// every scrape (picd_webhook_queue_depth, picd_webhook_deliveries_failed)
// read an index of the rows they count, not one of every delivery (#23:
// at 10M events the failed count read the whole log of deliveries).
func TestScrapeCountsReadTheirOwnIndexes(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	db := embedded(t, store)
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.ExecContext(ctx, `WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20000)
		INSERT INTO webhook_deliveries (delivery_id, seq, event_id, event_position, merchant_id, invoice_id, event_type, body, status,
			next_attempt_at, created_at, updated_at)
		SELECT 'whd_' || i, i, 'evt_' || i, '0/0', 'mer_' || (i % 50), 'inv_' || i, 'invoice.paid', x'7b7d',
			CASE WHEN i % 1000 = 0 THEN 'pending' ELSE 'delivered' END, CASE WHEN i % 1000 = 0 THEN i END, i, i FROM c`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ where, index string }{
		{`status = 'pending'`, "webhook_deliveries_due"},
		{`status IN ('failed', 'gone')`, "webhook_deliveries_failed"},
	} {
		var id, parent, unused int
		var detail string
		if err := db.Read.QueryRowContext(ctx, `EXPLAIN QUERY PLAN SELECT count(*) FROM webhook_deliveries WHERE `+c.where).Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(detail, c.index) {
			t.Errorf("count where %s: %q, want the index %s", c.where, detail, c.index)
		}
	}
}
