package httpapi

import (
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/readapi"
)

// exportReader is what the CSV exports read (issue #20). readapi.SQL
// implements it; a server whose Reader does not is answered 503.
type exportReader interface {
	ExportInvoices(ctx context.Context, merchantID string, from, to time.Time, fn func(readapi.Invoice) error) error
	ExportPayouts(ctx context.Context, merchantID string, from, to time.Time, fn func(readapi.Payout) error) error
	ExportLedger(ctx context.Context, merchantID string, from, to time.Time, fn func(readapi.LedgerEntry) error) error
}

var errNoExports = errorf(http.StatusServiceUnavailable, "service_unavailable", "exports are not available on this server")

// exportFlushRows is how many rows go out between flushes: the response is
// streamed, so memory stays flat whatever the period holds.
const exportFlushRows = 500

// exportWriteWindow is how long the client gets to take each batch of
// rows: the server's WriteTimeout would otherwise cut a long export.
const exportWriteWindow = time.Minute

// csvExport streams a CSV file of the merchant's rows in the period given
// by created_gte / created_lt (Unix ms, both optional).
func (s *server) csvExport(name string, header []string, run func(ctx context.Context, x exportReader, merchantID string, from, to time.Time, row func([]string) error) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		x, ok := s.d.Reader.(exportReader)
		if !ok {
			s.writeError(w, r, errNoExports)
			return
		}
		from, to, err := parsePeriod(r.URL.Query())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Disposition", `attachment; filename="`+name+`-`+periodName(from, to)+`.csv"`)
		rc := http.NewResponseController(w)
		// A socket deadline is wall-clock time, not the service's clock.
		_ = rc.SetWriteDeadline(time.Now().Add(exportWriteWindow))
		out := csv.NewWriter(w)
		_ = out.Write(header)
		n := 0
		err = run(r.Context(), x, mustPrincipal(r).merchantID, from, to, func(rec []string) error {
			if err := out.Write(rec); err != nil {
				return err
			}
			if n++; n%exportFlushRows == 0 {
				out.Flush()
				if err := out.Error(); err != nil {
					return err
				}
				_ = rc.Flush()
				_ = rc.SetWriteDeadline(time.Now().Add(exportWriteWindow))
			}
			return nil
		})
		out.Flush()
		if err == nil {
			err = out.Error()
		}
		if err != nil {
			// The status line is gone: end the connection without the
			// chunked terminator, so the client sees a failed download
			// rather than a file that looks complete.
			if !errors.Is(err, context.Canceled) {
				s.log.ErrorContext(r.Context(), "httpapi: export failed", "export", name, "rows", n, "err", err)
			}
			panic(http.ErrAbortHandler)
		}
	}
}

// periodName names the file after its period's UTC days.
func periodName(from, to time.Time) string {
	day := func(t time.Time, open string) string {
		if t.IsZero() {
			return open
		}
		return t.UTC().Format("2006-01-02")
	}
	return day(from, "start") + "_" + day(to, "now")
}

// csvText guards merchants' and customers' text against spreadsheet
// formulas: a cell starting with = + - @ or a control character is
// prefixed with an apostrophe (OWASP's advice for CSV injection).
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func csvTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return csvTime(*t)
}

var invoiceCSVHeader = []string{"id", "created_at", "status", "asset", "amount", "pay_amount", "amount_received", "fee", "fee_bps",
	"settle_asset", "settlement_status", "price_currency", "price_amount", "order_id", "description", "created_by", "paid_at", "expires_at"}

// exportInvoices is GET /v1/exports/invoices.csv.
func (s *server) exportInvoices() http.HandlerFunc {
	return s.csvExport("invoices", invoiceCSVHeader, func(ctx context.Context, x exportReader, merchantID string, from, to time.Time, row func([]string) error) error {
		return x.ExportInvoices(ctx, merchantID, from, to, func(inv readapi.Invoice) error {
			var priceCurrency, priceAmount string
			if inv.Price != nil {
				priceCurrency, priceAmount = inv.Price.Currency, inv.Price.Amount.String()
			}
			return row([]string{inv.ID, csvTime(inv.CreatedAt), string(inv.Status), inv.Asset, inv.Amount.String(), inv.PayAmount.String(),
				inv.AmountReceived.String(), inv.Fee.String(), strconv.FormatInt(inv.FeeBps, 10), inv.SettleAsset, inv.Settlement.Status,
				priceCurrency, priceAmount, csvText(inv.OrderID), csvText(inv.Description), string(inv.CreatedBy), csvTimePtr(inv.PaidAt),
				csvTime(inv.ExpiresAt)})
		})
	})
}

var payoutCSVHeader = []string{"id", "created_at", "kind", "status", "asset", "amount", "network_fee", "sent_amount", "to_address", "txid",
	"invoice_id", "failure_reason", "confirmed_at"}

// exportPayouts is GET /v1/exports/payouts.csv.
func (s *server) exportPayouts() http.HandlerFunc {
	return s.csvExport("payouts", payoutCSVHeader, func(ctx context.Context, x exportReader, merchantID string, from, to time.Time, row func([]string) error) error {
		return x.ExportPayouts(ctx, merchantID, from, to, func(p readapi.Payout) error {
			var fee, sent string
			if p.NetworkFee != nil {
				fee = p.NetworkFee.String()
			}
			if p.Sent != nil {
				sent = p.Sent.String()
			}
			return row([]string{p.ID, csvTime(p.CreatedAt), string(p.Kind), string(p.Status), p.Asset, p.Amount.String(), fee, sent,
				csvText(p.ToAddress), p.TxID, p.SourceInvoiceID, csvText(p.FailureReason), csvTimePtr(p.ConfirmedAt)})
		})
	})
}

var ledgerCSVHeader = []string{"seq", "recorded_at", "event_type", "event_id", "reference", "account", "asset", "amount"}

// exportLedger is GET /v1/exports/ledger.csv: every posting to the
// merchant's accounts (available, pending, reserved), signed.
func (s *server) exportLedger() http.HandlerFunc {
	return s.csvExport("ledger", ledgerCSVHeader, func(ctx context.Context, x exportReader, merchantID string, from, to time.Time, row func([]string) error) error {
		return x.ExportLedger(ctx, merchantID, from, to, func(e readapi.LedgerEntry) error {
			return row([]string{strconv.FormatInt(e.Seq, 10), csvTime(e.RecordedAt), e.EventType, e.EventID, e.Stream, e.Account, e.Asset, e.Amount.String()})
		})
	})
}
