package httpapi

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
)

// readCSV fetches an export and returns its rows after the header, which
// must be want.
func (b *bundle) readCSV(t *testing.T, key, path string, header []string) [][]string {
	t.Helper()
	res := b.do(t, req{method: "GET", path: path, key: key})
	if res.status != http.StatusOK {
		t.Fatalf("%s: %d %s", path, res.status, res.raw)
	}
	if ct := res.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	if cd := res.header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="`) || !strings.HasSuffix(cd, `.csv"`) {
		t.Errorf("%s: Content-Disposition %q", path, cd)
	}
	rows, err := csv.NewReader(strings.NewReader(string(res.raw))).ReadAll()
	if err != nil {
		t.Fatalf("%s: not CSV: %v\n%s", path, err, res.raw)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != strings.Join(header, ",") {
		t.Fatalf("%s: header %v, want %v", path, rows, header)
	}
	return rows[1:]
}

// TestExports: the CSV exports of invoices, payouts and ledger entries hold
// the merchant's rows of the period and nobody else's; the ledger's
// postings add up to the balance; text cannot become a spreadsheet formula.
func TestExports(t *testing.T) {
	b := setupMoney(t)
	m, other := b.signUp(t, "Export Shop"), b.signUp(t, "Other Shop")
	start := b.clock.Now()
	first := b.createInvoice(t, m.secret, `{"asset":"USDT.ETH","amount":"12.5","order_id":"=HYPERLINK(\"http://evil\")","description":"Mug, blue"}`)["id"].(string)
	b.clock.Advance(time.Hour)
	paid := b.paidInvoice(t, m.secret, "USDT.ETH", "100") // net 99.75 available
	b.paidInvoice(t, other.secret, "USDT.ETH", "7")
	refund := b.do(t, req{method: "POST", path: "/v1/invoices/" + paid + "/refunds", key: m.secret,
		body: `{"amount":"40","to_address":"0x2222222222222222222222222222222222222222"}`})
	if refund.status != http.StatusCreated {
		t.Fatalf("refund: %d %s", refund.status, refund.raw)
	}
	payoutID := refund.json(t)["id"].(string)

	inv := b.readCSV(t, m.secret, "/v1/exports/invoices.csv", invoiceCSVHeader)
	if len(inv) != 2 || inv[0][0] != first || inv[1][0] != paid {
		t.Fatalf("invoices: %v", inv)
	}
	col := func(name string) int {
		for i, h := range invoiceCSVHeader {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %s", name)
		return -1
	}
	if got := inv[0][col("order_id")]; got != `'=HYPERLINK("http://evil")` {
		t.Errorf("order_id %q: a formula must be defused", got)
	}
	if inv[0][col("description")] != "Mug, blue" || inv[0][col("amount")] != "12.5" || inv[0][col("status")] != "new" {
		t.Errorf("first invoice row %v", inv[0])
	}
	if inv[1][col("status")] != "paid" || inv[1][col("amount_received")] != "100" || inv[1][col("fee")] != "0.25" {
		t.Errorf("paid invoice row %v", inv[1])
	}
	// The period: only the second hour.
	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	if rows := b.readCSV(t, m.secret, "/v1/exports/invoices.csv?created_gte="+ms(start.Add(time.Hour)), invoiceCSVHeader); len(rows) != 1 || rows[0][0] != paid {
		t.Errorf("invoices from the second hour: %v", rows)
	}
	if rows := b.readCSV(t, m.secret, "/v1/exports/invoices.csv?created_lt="+ms(start.Add(time.Hour)), invoiceCSVHeader); len(rows) != 1 || rows[0][0] != first {
		t.Errorf("invoices of the first hour: %v", rows)
	}

	pays := b.readCSV(t, m.secret, "/v1/exports/payouts.csv", payoutCSVHeader)
	if len(pays) != 1 || pays[0][0] != payoutID || pays[0][2] != "refund" || pays[0][5] != "40" || pays[0][10] != paid {
		t.Errorf("payouts: %v", pays)
	}

	// Every posting to the merchant's accounts, summed per account, is the
	// balance: available 99.75 - 40 reserved for the refund.
	ledger := b.readCSV(t, m.secret, "/v1/exports/ledger.csv", ledgerCSVHeader)
	sums := map[string]domain.Amount{}
	for _, r := range ledger {
		if r[6] != "USDT.ETH" {
			t.Errorf("ledger row of another asset: %v", r)
		}
		sums[r[5]] = sums[r[5]].Add(domain.MustAmount(r[7]))
	}
	if sums["available"].String() != "59.75" || sums["pending"].String() != "0" || sums["reserved"].String() != "40" {
		t.Errorf("ledger sums %v, want available 59.75, pending 0, reserved 40", sums)
	}
	if rows := b.readCSV(t, other.secret, "/v1/exports/ledger.csv", ledgerCSVHeader); len(rows) == 0 {
		t.Error("the other merchant's ledger is empty")
	} else {
		for _, r := range rows {
			if r[4] == "invoice-"+paid || strings.Contains(r[4], paid) {
				t.Errorf("another merchant's ledger shows %v", r)
			}
		}
	}
	// An empty period: the header alone.
	if rows := b.readCSV(t, m.secret, "/v1/exports/ledger.csv?created_lt="+ms(start), ledgerCSVHeader); len(rows) != 0 {
		t.Errorf("ledger before anything happened: %v", rows)
	}

	for _, bad := range []struct {
		key, path  string
		status     int
		code, says string
	}{
		{m.secret, "/v1/exports/invoices.csv?created_gte=soon", 400, "validation_error", "created_gte"},
		{m.secret, "/v1/exports/payouts.csv?created_gte=5&created_lt=5", 400, "validation_error", "created_lt"},
		{m.pub, "/v1/exports/ledger.csv", 403, "forbidden", ""},
		{"", "/v1/exports/invoices.csv", 401, "unauthorized", ""},
	} {
		res := b.do(t, req{method: "GET", path: bad.path, key: bad.key})
		if res.status != bad.status || res.code() != bad.code || !strings.Contains(string(res.raw), bad.says) {
			t.Errorf("%s: %d %s, want %d %s", bad.path, res.status, res.raw, bad.status, bad.code)
		}
	}
}
