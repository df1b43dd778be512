package projections

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// The invoices' checks, in the one pass over the log: each invoice's
// events, and the refunds of it, are applied as the log reaches them. The
// audit holds an invoice while it is active; one that has had no event for
// a window of the log is compared with the read model and let go. If the
// log names it again (a late payment, a reversal, a refund), its state is
// rebuilt from its own stream, up to that event, and its comparison is
// undone until it is let go again. Memory is then bounded by the window,
// not by the invoices.

// DefaultAuditWindow is how many events of the log an invoice stays held
// after its last one. The invoices held cost about 1 KB each, and one
// named again later costs a read of its stream (about 60 µs on SQLite);
// at 50,000 the audit's memory is what the two-pass audit's was.
const DefaultAuditWindow = 50_000

// refundStep is a refund of an invoice requested, or released (failed or
// canceled, so that its amount may be refunded again).
type refundStep struct {
	pos     eventstore.Position
	eventID string
	amount  domain.Amount
	release bool
}

// invoiceRun is an invoice the audit holds.
type invoiceRun struct {
	stream, id string
	inv        *auditInvoice // nil until its creation is read
	touched    int           // the log's event count at its last event
}

// invoice is the run's invoice, if ev (which names id) belongs to it.
func (run *invoiceRun) invoice(rep *AuditReport, rec eventstore.RecordedEvent, id string) *auditInvoice {
	switch {
	case id != run.id:
		rep.problem("event %s: names invoice %s in the stream of %s", rec.ID, id, run.id)
		return nil
	case run.inv == nil:
		rep.problem("event %s: invoice %s was never created", rec.ID, id)
	}
	return run.inv
}

// invoiceWindow holds the invoices of the last window events of the log.
type invoiceWindow struct {
	store  eventstore.Store
	cmp    *invoiceComparer
	window int
	open   map[string]*invoiceRun
	// touches: (invoice, event count) in log order, one per event of an
	// invoice; an entry older than the invoice's last touch is stale.
	touches []touch
	head    int
	// statuses counts the invoices let go by status.
	statuses map[string]int64
	// revived counts the invoices read again from their streams.
	revived int
}

type touch struct {
	id string
	at int
}

func newInvoiceWindow(store eventstore.Store, cmp *invoiceComparer, window int) *invoiceWindow {
	if window <= 0 {
		window = DefaultAuditWindow
	}
	return &invoiceWindow{store: store, cmp: cmp, window: window, open: map[string]*invoiceRun{}, statuses: map[string]int64{}}
}

// run is the invoice whose stream rec is in, held again if it was let go.
func (w *invoiceWindow) run(ctx context.Context, rep *AuditReport, rec eventstore.RecordedEvent) (*invoiceRun, error) {
	id := strings.TrimPrefix(rec.Stream, invoicePrefix)
	run := w.open[id]
	if run == nil {
		run = &invoiceRun{stream: rec.Stream, id: id}
		if rec.Version > 0 { // its stream had events before: it was let go
			if err := w.revive(ctx, rep, run, rec.Position); err != nil {
				return nil, err
			}
		}
		w.open[id] = run
	}
	w.touch(rep, run)
	return run, nil
}

// refund applies a refund step, in its place in the log, to its invoice.
func (w *invoiceWindow) refund(ctx context.Context, rep *AuditReport, invoiceID string, st refundStep) error {
	run := w.open[invoiceID]
	if run == nil {
		run = &invoiceRun{stream: domain.InvoiceStream(invoiceID), id: invoiceID}
		if err := w.revive(ctx, rep, run, st.pos); err != nil {
			return err
		}
		w.open[invoiceID] = run
	}
	w.touch(rep, run)
	rep.refundStep(run, st)
	return nil
}

func (w *invoiceWindow) touch(rep *AuditReport, run *invoiceRun) {
	run.touched = rep.Events
	w.touches = append(w.touches, touch{id: run.id, at: rep.Events})
}

// revive rebuilds run from its stream's events before pos and the refunds
// of it before pos, as the audit had them when it let the invoice go:
// checked then, so what the checks report or add now is dropped. Its
// comparison with the read model is undone; it is compared again when
// let go.
func (w *invoiceWindow) revive(ctx context.Context, rep *AuditReport, run *invoiceRun, pos eventstore.Position) error {
	recs, err := eventstore.ReadFullStream(ctx, w.store, run.stream)
	if err != nil {
		return err
	}
	scratch := newAuditReport()
	steps := rep.refunds[run.id]
	for _, rec := range recs {
		if !rec.Position.Less(pos) {
			break
		}
		for len(steps) > 0 && steps[0].pos.Less(rec.Position) {
			scratch.refundStep(run, steps[0])
			steps = steps[1:]
		}
		if auditSkips[rec.Type] {
			continue
		}
		if e, err := domain.DecodeStored(rec.Type, rec.Data, rec.Metadata); err == nil {
			scratch.checkInvoiceEvent(run, rec, e) // one that does not decode was reported when first read
		}
	}
	for len(steps) > 0 && steps[0].pos.Less(pos) {
		scratch.refundStep(run, steps[0])
		steps = steps[1:]
	}
	if run.inv != nil {
		w.revived++
		w.statuses[string(run.inv.status)]--
		w.cmp.undo(rep, run.id)
	}
	return nil
}

// letGo compares the invoices without an event in the last window events
// and stops holding them.
func (w *invoiceWindow) letGo(ctx context.Context, rep *AuditReport) error {
	for w.head < len(w.touches) && w.touches[w.head].at <= rep.Events-w.window {
		t := w.touches[w.head]
		w.head++
		if run := w.open[t.id]; run != nil && run.touched == t.at {
			if err := w.finish(ctx, rep, run); err != nil {
				return err
			}
		}
	}
	if w.head > 4096 && w.head > len(w.touches)/2 {
		w.touches = w.touches[:copy(w.touches, w.touches[w.head:])]
		w.head = 0
	}
	return nil
}

func (w *invoiceWindow) finish(ctx context.Context, rep *AuditReport, run *invoiceRun) error {
	delete(w.open, run.id)
	if run.inv == nil {
		return nil
	}
	w.statuses[string(run.inv.status)]++
	return w.cmp.add(ctx, rep, run.id, run.inv)
}

// close lets every invoice go, at the log's end.
func (w *invoiceWindow) close(ctx context.Context, rep *AuditReport) error {
	for _, id := range slices.Sorted(maps.Keys(w.open)) {
		if err := w.finish(ctx, rep, w.open[id]); err != nil {
			return err
		}
	}
	w.touches, w.head = nil, 0
	if err := w.cmp.flush(ctx, rep); err != nil {
		return err
	}
	w.cmp.report(rep)
	w.cmp.statuses = w.statuses
	return nil
}

// refundStep applies a refund of the run's invoice. Refunds of an invoice
// never exceed what it left the merchant: credited less its fee, at the
// time of the request.
func (rep *AuditReport) refundStep(run *invoiceRun, st refundStep) {
	inv := run.inv
	if st.release {
		if inv != nil {
			inv.refunded = inv.refunded.Sub(st.amount)
		}
		return
	}
	if inv == nil {
		rep.problem("event %s: invoice %s was never created", st.eventID, run.id)
		return
	}
	inv.refunded = inv.refunded.Add(st.amount)
	if net := inv.credited.Sub(inv.charged); inv.refunded.Cmp(net) > 0 {
		rep.problem("event %s: refunds of invoice %s reach %s, more than its net %s", st.eventID, run.id, inv.refunded, net)
	}
}

// checkInvoiceEvent recomputes the fee an invoice's event records from
// the invoice's history before it (money rule 1), and follows what the
// invoices read model must show.
func (rep *AuditReport) checkInvoiceEvent(run *invoiceRun, rec eventstore.RecordedEvent, e domain.Event) {
	switch c := e.(type) {
	case domain.InvoiceCreated:
		rep.verifyFee(rec, c.Fee, domain.FeeBps, domain.ConversionFeeBps)
		if c.InvoiceID != run.id {
			rep.problem("event %s: creates invoice %s in the stream of %s", rec.ID, c.InvoiceID, run.id)
			return
		}
		run.inv = &auditInvoice{address: c.PayAddress, decimals: c.Decimals, bps: c.Fee.Bps,
			createdFee: c.Fee.Fee, status: domain.StatusNew}
		if rep.addresses {
			if rep.PayAddresses[c.Asset] == nil {
				rep.PayAddresses[c.Asset] = map[string]bool{}
			}
			rep.PayAddresses[c.Asset][c.PayAddress] = true
		}
	case domain.DepositDetected:
		if inv := run.invoice(rep, rec, c.InvoiceID); inv != nil {
			inv.received = inv.received.Add(c.Amount)
			rep.addDeposit(c.Asset, inv.address, c.Amount)
		}
	case domain.InvoiceStatusChanged:
		if inv := run.invoice(rep, rec, c.InvoiceID); inv != nil {
			inv.status = c.To
		}
	case domain.DepositConfirmed:
		inv := run.invoice(rep, rec, c.InvoiceID)
		if inv == nil {
			return
		}
		rep.verifyFee(rec, c.Fee, domain.FeeBps, domain.ConversionFeeBps)
		inv.everCredited = true
		if c.Legacy() { // before the money rules: the fee of this deposit alone
			inv.legacy = true
			if !c.Net.Add(c.Fee.Fee).Equal(c.Amount) || !c.Fee.Base.Equal(c.Amount) {
				rep.problem("event %s: net %s + fee %s != amount %s", rec.ID, c.Net, c.Fee.Fee, c.Amount)
			}
			inv.bps, inv.credited, inv.charged = c.Fee.Bps, inv.credited.Add(c.Amount), inv.charged.Add(c.Fee.Fee)
			inv.live.set(c.DepositID, c.Amount)
			rep.addRevenue(c.Fee.Bps, c.Asset, c.Fee.Fee)
			return
		}
		credited := inv.credited.Add(c.Amount)
		if len(inv.live) > 0 && c.Fee.Bps != inv.bps {
			rep.problem("event %s: invoice %s credited at %d bps after %d", rec.ID, c.InvoiceID, c.Fee.Bps, inv.bps)
		}
		switch {
		case !c.Fee.Base.Equal(credited) || c.Fee.Decimals != inv.decimals:
			rep.problem("event %s: fee on %s, but invoice %s has credited %s", rec.ID, c.Fee.Base, c.InvoiceID, credited)
		case !c.FeeBefore.Equal(inv.charged) || !c.Charged.Equal(c.Fee.Fee.Sub(inv.charged)):
			rep.problem("event %s: charged %s after %s, but invoice %s had been charged %s and now owes %s", rec.ID, c.Charged, c.FeeBefore,
				c.InvoiceID, inv.charged, c.Fee.Fee)
		case !c.Net.Add(c.Charged).Equal(c.Amount):
			rep.problem("event %s: net %s + charged %s != amount %s", rec.ID, c.Net, c.Charged, c.Amount)
		}
		inv.bps, inv.credited, inv.charged = c.Fee.Bps, credited, c.Fee.Fee
		inv.live.set(c.DepositID, c.Amount)
		rep.addRevenue(c.Fee.Bps, c.Asset, c.Charged)
	case domain.DepositReverted:
		inv := run.invoice(rep, rec, c.InvoiceID)
		if inv == nil {
			return
		}
		inv.received = inv.received.Sub(c.Amount)
		rep.addDeposit(c.Asset, inv.address, c.Amount.Neg())
		amount, credited := inv.live.get(c.DepositID)
		if refund, legacy := c.LegacyFeeRefund(); legacy && credited {
			inv.live.remove(c.DepositID)
			inv.credited, inv.charged = inv.credited.Sub(amount), inv.charged.Sub(refund)
			rep.addRevenue(inv.bps, c.Asset, refund.Neg())
			return
		}
		if credited != (c.Fee != nil) {
			rep.problem("event %s: reversal of deposit %s disagrees on whether it was credited", rec.ID, c.DepositID)
			return
		}
		if !credited {
			return
		}
		rep.verifyFee(rec, *c.Fee, domain.FeeBps, domain.ConversionFeeBps)
		rest := inv.credited.Sub(amount)
		if !c.Fee.Base.Equal(rest) || c.Fee.Bps != inv.bps || !c.Refund.Equal(inv.charged.Sub(c.Fee.Fee)) {
			rep.problem("event %s: refund %s of fee on %s at %d bps; invoice %s keeps %s credited at %d bps, charged %s", rec.ID,
				c.Refund, c.Fee.Base, c.Fee.Bps, c.InvoiceID, rest, inv.bps, inv.charged)
		}
		inv.live.remove(c.DepositID)
		inv.credited, inv.charged = rest, c.Fee.Fee
		rep.addRevenue(inv.bps, c.Asset, c.Refund.Neg())
	case domain.ConversionAbandoned:
		inv := run.invoice(rep, rec, c.InvoiceID)
		if inv == nil {
			return
		}
		rep.verifyFee(rec, c.Fee, domain.FeeBps)
		if !c.Fee.Base.Equal(inv.credited) || !c.Refund.Equal(inv.charged.Sub(c.Fee.Fee)) {
			rep.problem("event %s: unconverted invoice %s refunds %s of fee on %s; it credited %s, charged %s", rec.ID, c.InvoiceID,
				c.Refund, c.Fee.Base, inv.credited, inv.charged)
		}
		// The whole fee moves to the lower tier.
		rep.addRevenue(inv.bps, c.Asset, inv.charged.Neg())
		rep.addRevenue(c.Fee.Bps, c.Asset, c.Fee.Fee)
		inv.bps, inv.charged = c.Fee.Bps, c.Fee.Fee
	}
}

// invoiceComparer compares the invoices' read-model rows with what the log
// says, a batch of invoices at a time, looked up by id: the store's order of
// stream names need not be the read model's order of ids (collations).
type invoiceComparer struct {
	rowBatch[*auditInvoice]
	db   sqldb.DB
	skip bool
	// held: what the comparison found wrong with an invoice, reported at the
	// end unless the log names the invoice again (it is then compared again).
	held map[string]heldProblem
	// statuses counts the log's invoices by status.
	statuses map[string]int64
}

type heldProblem struct {
	msg   string
	found bool // the read model has a row of the invoice
}

// maxHeld bounds the held problems: past it they are reported at once,
// and an invoice revived after that may be reported twice, in a report
// that fails already.
const maxHeld = 10 * maxProblems

func (c *invoiceComparer) hold(rep *AuditReport, id string, p heldProblem) {
	if len(c.held) >= maxHeld {
		rep.problem("%s", p.msg)
		return
	}
	if c.held == nil {
		c.held = map[string]heldProblem{}
	}
	c.held[id] = p
}

// undo takes back the comparison of an invoice the log names again.
func (c *invoiceComparer) undo(rep *AuditReport, id string) {
	if c.skip {
		return
	}
	if _, ok := c.want[id]; ok {
		delete(c.want, id)
		return
	}
	p, held := c.held[id]
	delete(c.held, id)
	if !held || p.found {
		c.found--
		rep.RowsCompared--
	}
}

// report lists what the comparisons found, by invoice id.
func (c *invoiceComparer) report(rep *AuditReport) {
	for _, id := range slices.Sorted(maps.Keys(c.held)) {
		rep.problem("%s", c.held[id].msg)
	}
	c.held = nil
}

func (c *invoiceComparer) add(ctx context.Context, rep *AuditReport, id string, inv *auditInvoice) error {
	if c.skip || !c.rowBatch.add(id, inv) {
		return nil
	}
	return c.flush(ctx, rep)
}

// flush compares the batch: status, amount received, and the fee and tier
// money rule 1 gives (what was charged once anything was credited, the fee
// of amount before).
func (c *invoiceComparer) flush(ctx context.Context, rep *AuditReport) error {
	var status, received, fee string
	var bps int64
	return c.lookup(ctx, rep, c.db, "invoices", `SELECT invoice_id, status, amount_received, fee, fee_bps FROM invoices WHERE invoice_id IN`,
		func(rows *sql.Rows) (id string, err error) {
			err = rows.Scan(&id, &status, &received, &fee, &bps)
			return id, err
		},
		func(id string, want *auditInvoice) {
			wantFee := want.createdFee
			if want.everCredited {
				wantFee = want.charged
			}
			switch {
			case status != string(want.status) || received != want.received.String():
				c.hold(rep, id, heldProblem{found: true, msg: fmt.Sprintf("invoice %s: read model %s, received %s; log %s, received %s",
					id, status, received, want.status, want.received)})
			case !want.legacy && (fee != wantFee.String() || bps != want.bps):
				c.hold(rep, id, heldProblem{found: true, msg: fmt.Sprintf("invoice %s: read model fee %s at %d bps; log %s at %d bps",
					id, fee, bps, wantFee, want.bps)})
			}
		},
		func(id string, _ *auditInvoice) {
			c.hold(rep, id, heldProblem{msg: fmt.Sprintf("invoice %s: missing from the read model", id)})
		})
}

// compareInvoiceRows ends the invoices' comparison: rows of invoices the
// log does not have, and the counts by status the projector keeps (the
// picd_invoices gauge).
func (rep *AuditReport) compareInvoiceRows(ctx context.Context, store eventstore.Store, db sqldb.DB, c *invoiceComparer, through eventstore.Position) error {
	rowsTotal, err := countRows(ctx, db, "invoices")
	if err != nil {
		return err
	}
	if extra := rowsTotal - c.found; extra > 0 {
		// A row is the log's if the invoice's stream begins with its
		// creation, at or before the audit's last event.
		err := extraRows(ctx, rep, db, "invoices", `SELECT invoice_id FROM invoices WHERE invoice_id > ? ORDER BY invoice_id LIMIT 1000`, extra,
			func(rows *sql.Rows) (id string, _ string, err error) {
				err = rows.Scan(&id)
				return id, id, err
			},
			func(id string) (bool, error) {
				first, err := store.ReadStream(ctx, domain.InvoiceStream(id), 0, 1)
				if err != nil {
					return false, err
				}
				return len(first) > 0 && first[0].Type == domain.TypeInvoiceCreated && !through.Less(first[0].Position), nil
			})
		if err != nil {
			return err
		}
	}
	return rep.compareStatusCounts(ctx, db, "invoice_status_counts", "invoices", c.statuses)
}

// compareStatusCounts checks the counts by status that a projector keeps
// in table (the picd_invoices and picd_payouts gauges) against the log's;
// what names the rows counted (invoices, payouts).
func (rep *AuditReport) compareStatusCounts(ctx context.Context, db sqldb.DB, table, what string, want map[string]int64) error {
	want = maps.Clone(want)
	if want == nil {
		want = map[string]int64{}
	}
	rows, err := db.Read.QueryContext(ctx, `SELECT status, n FROM `+table)
	if err != nil {
		return fmt.Errorf("audit: %s counts: %w", what, err)
	}
	defer rows.Close()
	got := map[string]int64{}
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return err
		}
		got[status] = n
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for status := range got {
		want[status] += 0 // compare every status either side names
	}
	for _, status := range slices.Sorted(maps.Keys(want)) {
		if got[status] != want[status] {
			rep.problem("%s %s: the read model counts %d, the log has %d", what, status, got[status], want[status])
		}
	}
	return nil
}
