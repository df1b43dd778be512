package projections

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// The audit's second pass: each invoice's history on its own, in its
// stream's order, with the refunds of it the first pass found merged in at
// their place in the log. One invoice is held at a time; what it must show
// goes to the read-model comparison in batches.

// refundStep is a refund of an invoice requested, or released (failed or
// canceled, so that its amount may be refunded again).
type refundStep struct {
	pos     eventstore.Position
	eventID string
	amount  domain.Amount
	release bool
}

// invoiceRun is the invoice being checked.
type invoiceRun struct {
	stream, id string
	inv        *auditInvoice // nil until its creation is read
	steps      []refundStep  // its refunds not yet applied, in log order
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

// auditInvoices is the second pass. With a store that scans streams it
// reads the invoices' streams in one ordered scan; otherwise it reads each
// stream the first pass named. Either way only events at or before through
// (where the first pass stopped) count.
func (rep *AuditReport) auditInvoices(ctx context.Context, store eventstore.Store, streams map[string]struct{}, through eventstore.Position,
	cmp *invoiceComparer, opt AuditOptions, invoiceEvents int) error {
	rep.addresses = opt.Addresses
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var read func(context.Context) ([]eventstore.RecordedEvent, error)
	if sc, ok := store.(eventstore.StreamScanner); ok && streams == nil {
		var after eventstore.StreamCursor
		read = func(ctx context.Context) ([]eventstore.RecordedEvent, error) {
			recs, err := sc.ScanStreams(ctx, invoicePrefix, after, through, auditBatch)
			if len(recs) > 0 {
				after = eventstore.CursorOf(recs[len(recs)-1])
			}
			return recs, err
		}
	} else {
		names := slices.Sorted(maps.Keys(streams))
		read = func(ctx context.Context) ([]eventstore.RecordedEvent, error) {
			var out []eventstore.RecordedEvent
			for len(names) > 0 && len(out) < auditBatch {
				recs, err := eventstore.ReadFullStream(ctx, store, names[0])
				if err != nil {
					return nil, err
				}
				names = names[1:]
				for _, r := range recs {
					if !through.Less(r.Position) {
						out = append(out, r)
					}
				}
			}
			return out, nil
		}
	}
	batches := readAhead(ctx, read)
	workers := runtime.GOMAXPROCS(0)
	events := make([]domain.Event, auditBatch)
	errs := make([]error, auditBatch)
	done := 0
	statuses := map[string]int64{}
	var run *invoiceRun
	finish := func() error {
		if run == nil {
			return nil
		}
		for _, st := range run.steps {
			rep.refundStep(run, st)
		}
		if run.inv != nil {
			statuses[string(run.inv.status)]++
			return cmp.add(ctx, rep, run.id, run.inv)
		}
		return nil
	}
	for b := range batches {
		if b.err != nil {
			return b.err
		}
		recs := b.recs
		if len(recs) > len(events) {
			events, errs = make([]domain.Event, len(recs)), make([]error, len(recs))
		}
		decodeParallel(recs, events[:len(recs)], errs[:len(recs)], workers, invoicePass)
		for i, rec := range recs {
			done++
			if run == nil || rec.Stream != run.stream {
				if err := finish(); err != nil {
					return err
				}
				id := strings.TrimPrefix(rec.Stream, invoicePrefix)
				run = &invoiceRun{stream: rec.Stream, id: id, steps: rep.refunds[id]}
				delete(rep.refunds, id)
			}
			// The refunds requested before this event, at their place.
			for len(run.steps) > 0 && run.steps[0].pos.Less(rec.Position) {
				rep.refundStep(run, run.steps[0])
				run.steps = run.steps[1:]
			}
			if errs[i] != nil {
				rep.problem("event %s: %v", rec.ID, errs[i])
				continue
			}
			if events[i] != nil {
				rep.checkInvoiceEvent(run, rec, events[i])
			}
		}
		if opt.Progress != nil {
			opt.Progress(rep.Events+done, int64(rep.Events+max(invoiceEvents, done)))
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return err
	}
	// Both passes read the events up to through: a scan that missed some
	// (a store whose order of names does not keep a prefix together) must
	// not pass for a clean audit.
	if done != invoiceEvents {
		return fmt.Errorf("audit: the invoices' streams read %d events, the log holds %d of them", done, invoiceEvents)
	}
	if err := cmp.flush(ctx, rep); err != nil {
		return err
	}
	cmp.statuses = statuses
	// Refunds of invoices that have no stream.
	for _, id := range slices.Sorted(maps.Keys(rep.refunds)) {
		for _, st := range rep.refunds[id] {
			if !st.release {
				rep.problem("event %s: invoice %s was never created", st.eventID, id)
			}
		}
	}
	rep.refunds = nil
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

// compareBatch is how many invoices one read-model query looks up.
const compareBatch = 500

// invoiceComparer compares the invoices' read-model rows with what the log
// says, a batch of invoices at a time, looked up by id: the store's order of
// stream names need not be the read model's order of ids (collations).
type invoiceComparer struct {
	db   sqldb.DB
	skip bool
	// want: the invoices of the batch, by id.
	want map[string]*auditInvoice
	// found counts the read-model rows the lookups found: more rows in the
	// table are invoices the log does not have.
	found, invoices int64
	// statuses counts the log's invoices by status.
	statuses map[string]int64
}

func (c *invoiceComparer) add(ctx context.Context, rep *AuditReport, id string, inv *auditInvoice) error {
	c.invoices++
	if c.skip {
		return nil
	}
	if c.want == nil {
		c.want = make(map[string]*auditInvoice, compareBatch)
	}
	c.want[id] = inv
	if len(c.want) < compareBatch {
		return nil
	}
	return c.flush(ctx, rep)
}

// flush compares the batch: status, amount received, and the fee and tier
// money rule 1 gives (what was charged once anything was credited, the fee
// of amount before).
func (c *invoiceComparer) flush(ctx context.Context, rep *AuditReport) error {
	if len(c.want) == 0 {
		return nil
	}
	ids := make([]any, 0, len(c.want))
	for id := range c.want {
		ids = append(ids, id)
	}
	q := c.db.Q(`SELECT invoice_id, status, amount_received, fee, fee_bps FROM invoices WHERE invoice_id IN (?` +
		strings.Repeat(", ?", len(ids)-1) + `)`)
	rows, err := c.db.Read.QueryContext(ctx, q, ids...)
	if err != nil {
		return fmt.Errorf("audit: invoices: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, status, received, fee string
		var bps int64
		if err := rows.Scan(&id, &status, &received, &fee, &bps); err != nil {
			return err
		}
		rep.RowsCompared++
		c.found++
		want := c.want[id]
		if want == nil {
			continue // a duplicate id: the table's key forbids it
		}
		delete(c.want, id)
		wantFee := want.createdFee
		if want.everCredited {
			wantFee = want.charged
		}
		switch {
		case status != string(want.status) || received != want.received.String():
			rep.problem("invoice %s: read model %s, received %s; log %s, received %s", id, status, received, want.status, want.received)
		case !want.legacy && (fee != wantFee.String() || bps != want.bps):
			rep.problem("invoice %s: read model fee %s at %d bps; log %s at %d bps", id, fee, bps, wantFee, want.bps)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(c.want)) {
		rep.problem("invoice %s: missing from the read model", id)
	}
	clear(c.want)
	return nil
}

// compareInvoiceRows ends the invoices' comparison: rows of invoices the
// log does not have, and the counts by status the projector keeps (the
// picd_invoices gauge).
func (rep *AuditReport) compareInvoiceRows(ctx context.Context, store eventstore.Store, db sqldb.DB, c *invoiceComparer, through eventstore.Position) error {
	var rowsTotal int64
	if err := db.Read.QueryRowContext(ctx, `SELECT count(*) FROM invoices`).Scan(&rowsTotal); err != nil {
		return fmt.Errorf("audit: invoices: %w", err)
	}
	if extra := rowsTotal - c.found; extra > 0 {
		if err := rep.extraInvoiceRows(ctx, store, db, through, extra); err != nil {
			return err
		}
	}
	return rep.compareStatusCounts(ctx, db, "invoice_status_counts", "invoices", c.statuses)
}

// extraInvoiceRows names the read model's invoices the log does not have,
// looking each row up in the log until it has found n: the slow path of a
// read model that is wrong already.
func (rep *AuditReport) extraInvoiceRows(ctx context.Context, store eventstore.Store, db sqldb.DB, through eventstore.Position, n int64) error {
	q := db.Q(`SELECT invoice_id FROM invoices WHERE invoice_id > ? ORDER BY invoice_id LIMIT 1000`)
	after := ""
	for n > 0 {
		rows, err := db.Read.QueryContext(ctx, q, after)
		if err != nil {
			return fmt.Errorf("audit: invoices: %w", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		after = ids[len(ids)-1]
		for _, id := range ids {
			first, err := store.ReadStream(ctx, domain.InvoiceStream(id), 0, 1)
			if err != nil {
				return err
			}
			if len(first) == 0 || first[0].Type != domain.TypeInvoiceCreated || through.Less(first[0].Position) {
				rep.problem("invoice %s: in the read model, not in the log", id)
				if n--; n == 0 {
					return nil
				}
			}
		}
	}
	return nil
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
