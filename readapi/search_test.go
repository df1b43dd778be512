package readapi

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// The dashboard's search reads through indexes, not every invoice of the
// merchant or every payment (issue #20): SQLite's plan for each part of
// the search names an index.
func TestSearchUsesIndexes(t *testing.T) {
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	db := sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	if err := projections.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	where, args := InvoiceFilter{Query: "0xabc"}.searchWhere()
	plan := explain(t, db.Read, `SELECT invoice_id FROM invoices WHERE merchant_id = ?`+where, append([]any{"mer_1"}, args...)...)
	for _, want := range []string{"INDEX invoices_order", "INDEX payments_txid", "INDEX invoices_address", "(merchant_id=? AND invoice_id=?)"} {
		if !strings.Contains(plan, want) {
			t.Errorf("the search's plan does not use %s:\n%s", want, plan)
		}
	}
	if strings.Contains(plan, "SCAN invoices") || strings.Contains(plan, "SCAN payments") || strings.Contains(plan, "(merchant_id=?)\n") {
		t.Errorf("the search reads a whole table or every invoice of the merchant:\n%s", plan)
	}
}

func explain(t *testing.T, db *sql.DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.Query(`EXPLAIN QUERY PLAN `+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		b.WriteString(detail + "\n")
	}
	return b.String()
}
