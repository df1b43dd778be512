package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
)

func TestPayoutsInOneBatchSQLite(t *testing.T)   { testPayoutsInOneBatch(t, separateSQLite) }
func TestPayoutsInOneBatchPostgres(t *testing.T) { testPayoutsInOneBatch(t, postgresDB) }

// testPayoutsInOneBatch: a batch keeps the payouts it requested in memory
// and writes each once; the rows are the same as when every event is a
// batch of its own (each change an UPDATE of a row already written).
func testPayoutsInOneBatch(t *testing.T, newDB func(*testing.T) sqldb.DB) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	requested := func(id string, s int) domain.Event {
		return domain.PayoutRequested{PayoutID: id, MerchantID: "mer_1", Asset: "BTC", Amount: domain.MustAmount("0.5"),
			ToAddress: "bc1q" + id, Kind: domain.PayoutKind("withdrawal"), RequestedAt: at(s)}
	}
	events := []domain.Event{
		requested("po_a", 1), requested("po_b", 2), requested("po_c", 3),
		domain.PayoutSigned{PayoutID: "po_a", MerchantID: "mer_1", Asset: "BTC", TxID: "tx_a", NetworkFee: domain.MustAmount("0.001"), Sent: domain.MustAmount("0.499"), SignedAt: at(4)},
		domain.PayoutSigned{PayoutID: "po_b", MerchantID: "mer_1", Asset: "BTC", TxID: "tx_b", NetworkFee: domain.MustAmount("0.002"), Sent: domain.MustAmount("0.498"), SignedAt: at(5)},
		domain.PayoutCanceled{PayoutID: "po_c", MerchantID: "mer_1", Asset: "BTC", Amount: domain.MustAmount("0.5"), CanceledAt: at(6)},
		domain.PayoutSent{PayoutID: "po_a", MerchantID: "mer_1", TxID: "tx_a", SentAt: at(7)},
		domain.PayoutFailed{PayoutID: "po_b", MerchantID: "mer_1", Asset: "BTC", Amount: domain.MustAmount("0.5"), Reason: "rejected", FailedAt: at(8)},
		domain.PayoutConfirmed{PayoutID: "po_a", MerchantID: "mer_1", Asset: "BTC", TxID: "tx_a2", Amount: domain.MustAmount("0.5"),
			NetworkFee: domain.MustAmount("0.0015"), Sent: domain.MustAmount("0.4985"), ConfirmedAt: at(9)},
	}
	one, each := newDB(t), newDB(t)
	for _, db := range []sqldb.DB{one, each} {
		if err := projections.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	runEach := projections.NewRunner(store, each, nil, projections.Payouts{})
	for i, e := range events {
		body, _ := json.Marshal(e)
		meta, _ := json.Marshal(commands.Metadata{CommandID: fmt.Sprint("c", i), MerchantID: "mer_1", OccurredAt: t0})
		if _, err := store.Append(ctx, fmt.Sprint("payout-test-", i), eventstore.NoStream, []eventstore.EventData{
			{ID: fmt.Sprint("ev", i), Type: e.EventType(), Data: body, Metadata: meta}}); err != nil {
			t.Fatal(err)
		}
		if err := runEach.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := projections.NewRunner(store, one, nil, projections.Payouts{}).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	dump := func(db sqldb.DB) string {
		rows, err := db.Read.QueryContext(ctx, `SELECT payout_id, merchant_id, asset, kind, amount, to_address, status, txid, network_fee,
			sent_amount, source_invoice_id, failure_reason, request_stream, request_version, created_at, sent_at, confirmed_at, failed_at, updated_at
			FROM payouts ORDER BY payout_id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			vals := make([]any, 19)
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(vals...))
		}
		return strings.Join(out, "\n")
	}
	got, want := dump(one), dump(each)
	if got != want || !strings.Contains(want, "confirmed") || !strings.Contains(want, "rejected") || !strings.Contains(want, "canceled") {
		t.Fatalf("payouts projected in one batch:\n%s\nevent by event:\n%s", got, want)
	}
	// The counts by status (the picd_payouts gauge) are kept by the
	// projector in either way: a row changed in its own batch and one
	// changed by a later batch's UPDATE.
	for name, db := range map[string]sqldb.DB{"one batch": one, "event by event": each} {
		if got := statusCounts(t, db, `SELECT status, n FROM payout_status_counts WHERE n <> 0`); got != "canceled:1 confirmed:1 failed:1" {
			t.Errorf("%s: payout_status_counts %s", name, got)
		}
	}
}
