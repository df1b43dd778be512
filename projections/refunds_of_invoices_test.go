package projections_test

import (
	"context"
	"testing"

	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
)

func TestRefundsOfInvoicesSQLite(t *testing.T)   { testRefundsOfInvoices(t, separateSQLite) }
func TestRefundsOfInvoicesPostgres(t *testing.T) { testRefundsOfInvoices(t, postgresDB) }

// testRefundsOfInvoices: the refunds of a page of invoices in one query
// (the invoice's refunds field), by invoice, oldest first; only the
// merchant's, only refunds.
func testRefundsOfInvoices(t *testing.T, newDB func(*testing.T) sqldb.DB) {
	ctx := context.Background()
	db := newDB(t)
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	for _, row := range []struct {
		id, merchant, kind, status, fee, invoice string
		created                                  int64
	}{
		{"po_2", "mer_1", "refund", "sent", "0.0001", "inv_a", 20},
		{"po_1", "mer_1", "refund", "requested", "", "inv_a", 10},
		{"po_3", "mer_1", "refund", "confirmed", "0.0001", "inv_b", 30},
		{"po_4", "mer_1", "instant", "sent", "0.0001", "inv_c", 40},
		{"po_5", "mer_2", "refund", "sent", "0.0001", "inv_c", 50},
		{"po_6", "mer_1", "refund", "sent", "0.0001", "inv_d", 60},
	} {
		sent := "" // set with the network fee, when signed
		if row.fee != "" {
			sent = "1"
		}
		if _, err := db.Write.ExecContext(ctx, db.Q(`INSERT INTO payouts (payout_id, merchant_id, asset, kind, amount, to_address, status,
			network_fee, sent_amount, source_invoice_id, request_stream, request_version, created_at, updated_at)
			VALUES (?, ?, 'BTC', ?, '1', 'bc1q', ?, ?, ?, ?, 'payouts-x', 0, ?, ?)`),
			row.id, row.merchant, row.kind, row.status, row.fee, sent, row.invoice, row.created, row.created); err != nil {
			t.Fatal(err)
		}
	}
	got, err := readapi.NewSQL(db).RefundsOfInvoices(ctx, "mer_1", []string{"inv_a", "inv_b", "inv_c", "inv_none"})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string][]string{}
	for inv, ps := range got {
		for _, p := range ps {
			ids[inv] = append(ids[inv], p.ID)
		}
	}
	if len(ids) != 2 || len(ids["inv_a"]) != 2 || ids["inv_a"][0] != "po_1" || ids["inv_a"][1] != "po_2" ||
		len(ids["inv_b"]) != 1 || ids["inv_b"][0] != "po_3" {
		t.Fatalf("refunds of invoices: %v, want inv_a [po_1 po_2], inv_b [po_3]", ids)
	}
	if p := got["inv_a"][1]; p.NetworkFee == nil || p.NetworkFee.String() != "0.0001" || p.Status != "sent" {
		t.Fatalf("po_2: %+v", p)
	}
	if got, err := readapi.NewSQL(db).RefundsOfInvoices(ctx, "mer_1", nil); err != nil || len(got) != 0 {
		t.Fatalf("no invoices: %v %v", got, err)
	}
}
