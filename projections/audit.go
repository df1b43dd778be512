package projections

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// AuditReport is what an auditor gets from the log alone: the ledger per
// account and asset, the platform's fee revenue per tier, and every
// disagreement, within the log or with the read models.
type AuditReport struct {
	Events      int `json:"events"`
	MoneyEvents int `json:"money_events"`
	FeesChecked int `json:"fees_checked"`
	Payouts     int `json:"payouts"`
	Conversions int `json:"conversions"`
	// Ledger maps account -> asset -> sum of postings.
	Ledger map[string]map[string]domain.Amount `json:"ledger"`
	// FeeRevenue maps a fee tier in bps -> asset -> what the platform
	// earned at that tier (net of fees reversed with their deposits).
	FeeRevenue map[int64]map[string]domain.Amount `json:"fee_revenue"`
	// RowsCompared counts the read-model rows checked against the log.
	RowsCompared int           `json:"rows_compared"`
	Elapsed      time.Duration `json:"elapsed_ns"`
	Problems     []string      `json:"problems"`

	// Debts lists the merchants' available balances that are negative at
	// the end of the log (money rule 6): account -> asset -> amount. A debt
	// is the truth after a reversal of funds already paid out, not a mismatch.
	Debts map[string]map[string]domain.Amount `json:"debts"`

	// NetworkCosts maps a cost kind -> asset -> the network fees the
	// gateway paid from its own coins (money rule 7).
	NetworkCosts map[string]map[string]domain.Amount `json:"network_costs"`
	// OperatorIncome per asset: fee revenue (conversion remainders
	// included) less the network costs the gateway paid.
	OperatorIncome map[string]OperatorIncome `json:"operator_income"`
	// Held is, per asset, what the ledger says the gateway holds on chain
	// (money rule 7): merchant balances + fee revenue − network costs,
	// which is what came in less what left (external and network:fees).
	// picd audit --chain compares it with the chain.
	Held map[string]domain.Amount `json:"held"`

	// Deposits maps asset -> pay address -> what the log says arrived
	// there (seen, less reversed): picd audit --chain's per-address side.
	Deposits map[string]map[string]domain.Amount `json:"-"`
	// PayAddresses maps an asset -> every pay address of its invoices.
	PayAddresses map[string]map[string]bool `json:"-"`

	// InvoicesRevived counts the invoices the audit let go and then read
	// again from their streams, when the log named them once more.
	InvoicesRevived int `json:"invoices_revived"`
	// PayoutsHeldMost is the most payouts the audit held at once: those
	// open at a point of the log (an ended payout is compared and let go).
	PayoutsHeldMost int `json:"payouts_held_most"`

	// refunds holds the refund requests and releases of each invoice, in
	// log order, to rebuild an invoice the audit let go (memory grows with
	// the refunds, not the invoices); refundsDue, those of the event being
	// checked.
	refunds    map[string][]refundStep
	refundsDue []dueRefund
	// payouts holds the payouts open at this point of the log; ended, the
	// payouts the event being checked ended (payoutComparer lets them go).
	payouts map[string]*auditPayout
	ended   []string
	// endedStatus: the status of each ended payout, for picd audit
	// --chain (kept with addresses).
	endedStatus map[string]string
	// addresses: fill Deposits and PayAddresses (AuditOptions.Addresses).
	addresses bool
	// costs: network costs by transaction id, for picd audit --chain
	// (kept with addresses).
	costs map[string]domain.Amount
}

// OperatorIncome is the operator's account of one asset.
type OperatorIncome struct {
	FeeRevenue domain.Amount `json:"fee_revenue"`
	// NetworkFeeRevenue: network fees merchants paid in a token for the
	// native coin the hot wallet burned (domain.NetworkFeeRevenueAccount).
	NetworkFeeRevenue domain.Amount `json:"network_fee_revenue"`
	NetworkCosts      domain.Amount `json:"network_costs"` // paid, as a positive amount
	Income            domain.Amount `json:"income"`
}

// auditInvoice is an invoice as the audit recomputes it: what it credited
// (confirmed, not reverted), at which tier, and the fee charged on that.
type auditInvoice struct {
	address  string // where it is paid
	decimals int32
	bps      int64
	credited domain.Amount
	charged  domain.Amount
	live     liveDeposits // credited deposits
	// What the invoices read model must show.
	createdFee   domain.Amount
	received     domain.Amount
	status       domain.Status
	everCredited bool
	legacy       bool // confirmed by the rule before 2026-12-03: its fee field is not rule 1's
	// refunded: the invoice's refunds that have not failed.
	refunded domain.Amount
}

// liveDeposits are an invoice's credited deposits: a slice, as an invoice
// has one or two, where a map cost a few hundred bytes per invoice.
type liveDeposits []liveDeposit

type liveDeposit struct {
	id     string
	amount domain.Amount
}

func (l liveDeposits) get(id string) (domain.Amount, bool) {
	for _, d := range l {
		if d.id == id {
			return d.amount, true
		}
	}
	return domain.Amount{}, false
}

func (l *liveDeposits) set(id string, amount domain.Amount) {
	for i := range *l {
		if (*l)[i].id == id {
			(*l)[i].amount = amount
			return
		}
	}
	*l = append(*l, liveDeposit{id: id, amount: amount})
}

func (l *liveDeposits) remove(id string) {
	*l = slices.DeleteFunc(*l, func(d liveDeposit) bool { return d.id == id })
}

type auditPayout struct {
	merchantID, status, txid string
	asset                    string
	kind                     domain.PayoutKind
	invoiceID                string
	amount                   domain.Amount
	networkFee               *domain.Amount
	feeConverted             bool // the fee is a native coin burned, in the token: the operator's
}

// maxProblems bounds the report: a log broken everywhere says so in the
// first thousand lines.
const maxProblems = 1000

func (r *AuditReport) problem(format string, args ...any) {
	if len(r.Problems) == maxProblems {
		r.Problems = append(r.Problems, "… more problems not listed")
	}
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// OK reports whether the log and the read models agree.
func (r AuditReport) OK() bool { return len(r.Problems) == 0 }

// AuditOptions tune an audit.
type AuditOptions struct {
	// Progress is called after each batch with the events read so far and
	// how many there are to read: -1 while the store counts them (beside
	// the audit), or if it cannot.
	Progress func(done int, total int64)
	// SkipReadModels audits the log alone (no database needed).
	SkipReadModels bool
	// Now is the clock that times the audit (nil: time.Now).
	Now func() time.Time
	// Addresses fills Deposits and PayAddresses (picd audit --chain): they
	// hold every pay address, so the audit's memory then grows with the
	// invoices.
	Addresses bool
	// Window is how many events an invoice is held after its last one
	// (0: DefaultAuditWindow). Tests make it small, to revive every invoice.
	Window int
	// CompareBatch is how many invoices or payouts one read-model lookup
	// compares (0: 500). Tests make it 1, so that a revived invoice was
	// compared before.
	CompareBatch int
}

// Audit reads the whole log (up to its current end) and checks it, then
// compares the read models. The read models must be caught up first.
func Audit(ctx context.Context, store eventstore.Store, db sqldb.DB) (AuditReport, error) {
	return AuditWith(ctx, store, db, AuditOptions{})
}

// auditBatch is how many events one read returns.
const auditBatch = 5000

// AuditWith audits with options. It checks that every money event's
// postings sum to zero per asset; that every fee recomputes from its
// inputs (invoices, deposits, conversions) and conversions from their rate;
// that payouts add up (sent + network fee = amount); that no merchant
// balance is ever negative, in log order; that the fee account equals the
// revenue per tier; and that the balances, payouts and invoices read models
// equal what the log says, to the smallest unit.
//
// It reads the log once, in order, decoding events in parallel and
// applying them in order. Its memory is bounded by the merchants and
// assets, and by the invoices active in a window of the log, not by the
// invoices: one the log has not named for Window events is compared and
// let go (invoiceWindow).
func AuditWith(ctx context.Context, store eventstore.Store, db sqldb.DB, opt AuditOptions) (AuditReport, error) {
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	rep := newAuditReport()
	rep.addresses = opt.Addresses
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The count is for the progress report only: taken beside the audit
	// (on SQLite at 10M events it read the log's pages for 7 s before the
	// audit began), -1 until it is known.
	var total atomic.Int64
	total.Store(-1)
	if c, ok := store.(Counter); ok && opt.Progress != nil {
		go func() {
			if n, err := c.CountAfter(ctx, eventstore.Start); err == nil {
				total.Store(n)
			}
		}()
	}
	pos := eventstore.Start
	batches := readAhead(ctx, func(ctx context.Context) ([]eventstore.RecordedEvent, error) {
		recs, err := store.ReadAll(ctx, pos, auditBatch)
		if len(recs) > 0 {
			pos = recs[len(recs)-1].Position
		}
		return recs, err
	})
	cmp := &invoiceComparer{rowBatch: rowBatch[*auditInvoice]{size: opt.CompareBatch}, db: db, skip: opt.SkipReadModels}
	payouts := &payoutComparer{rowBatch: rowBatch[*auditPayout]{size: opt.CompareBatch}, db: db, skip: opt.SkipReadModels}
	defer cmp.close()
	defer payouts.close()
	invoices := newInvoiceWindow(store, cmp, opt.Window)
	var through eventstore.Position // the last event read
	for b := range decodeAhead(ctx, batches, runtime.GOMAXPROCS(0)) {
		if b.err != nil {
			return rep, b.err
		}
		recs, events, errs := b.recs, b.events, b.errs
		for i, rec := range recs {
			if err := invoices.letGo(ctx, &rep); err != nil {
				return rep, err
			}
			rep.Events++
			through = rec.Position
			var run *invoiceRun
			if isInvoiceStream(rec.Stream) {
				var err error
				if run, err = invoices.run(ctx, &rep, rec); err != nil {
					return rep, err
				}
			}
			if errs[i] != nil {
				rep.problem("event %s: %v", rec.ID, errs[i])
				continue
			}
			if events[i] == nil {
				continue
			}
			if run != nil {
				rep.checkInvoiceEvent(run, rec, events[i])
			} else {
				rep.checkFees(rec, events[i])
				for _, r := range rep.refundsDue {
					if err := invoices.refund(ctx, &rep, r.invoiceID, r.step); err != nil {
						return rep, err
					}
				}
				rep.refundsDue = rep.refundsDue[:0]
				for _, id := range rep.ended {
					if err := payouts.end(ctx, &rep, id); err != nil {
						return rep, err
					}
				}
				rep.ended = rep.ended[:0]
			}
			rep.checkLedger(rec, events[i])
		}
		if opt.Progress != nil {
			t := total.Load()
			if t >= 0 {
				t = max(t, int64(rep.Events))
			}
			opt.Progress(rep.Events, t)
		}
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if err := invoices.close(ctx, &rep); err != nil {
		return rep, err
	}
	rep.InvoicesRevived = invoices.revived
	rep.PayoutsHeldMost = max(payouts.most, len(rep.payouts))
	rep.refunds = nil
	rep.checkFeeAccount()
	rep.listDebts()
	rep.operatorIncome()
	if !opt.SkipReadModels {
		if err := rep.compareBalances(ctx, db); err != nil {
			return rep, err
		}
		if err := rep.comparePayouts(ctx, store, db, payouts, through); err != nil {
			return rep, err
		}
		if err := rep.compareInvoiceRows(ctx, store, db, cmp, through); err != nil {
			return rep, err
		}
	}
	rep.Elapsed = now().Sub(start)
	return rep, nil
}

func newAuditReport() AuditReport {
	return AuditReport{Ledger: map[string]map[string]domain.Amount{}, FeeRevenue: map[int64]map[string]domain.Amount{},
		Debts: map[string]map[string]domain.Amount{}, Deposits: map[string]map[string]domain.Amount{},
		PayAddresses: map[string]map[string]bool{}, NetworkCosts: map[string]map[string]domain.Amount{}, OperatorIncome: map[string]OperatorIncome{},
		refunds: map[string][]refundStep{}, payouts: map[string]*auditPayout{}, costs: map[string]domain.Amount{}}
}

type auditRead struct {
	recs []eventstore.RecordedEvent
	// events and errs: each event decoded (nil: one the audit skips), or
	// why it did not decode.
	events []domain.Event
	errs   []error
	err    error
}

// decodeAhead decodes the batches read, on workers goroutines, while the
// audit applies the batch before: reading, decoding and applying overlap.
func decodeAhead(ctx context.Context, read <-chan auditRead, workers int) <-chan auditRead {
	decoded := make(chan auditRead, 1)
	go func() {
		defer close(decoded)
		for b := range read {
			if b.err == nil {
				b.events, b.errs = make([]domain.Event, len(b.recs)), make([]error, len(b.recs))
				decodeParallel(b.recs, b.events, b.errs, workers)
			}
			select {
			case decoded <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return decoded
}

// readAhead reads batches with read until one is empty, one ahead of
// the batch being decoded and applied. read runs on one goroutine.
func readAhead(ctx context.Context, read func(context.Context) ([]eventstore.RecordedEvent, error)) <-chan auditRead {
	batches := make(chan auditRead, 1)
	go func() {
		defer close(batches)
		for {
			recs, err := read(ctx)
			if err != nil {
				select {
				case batches <- auditRead{err: err}:
				case <-ctx.Done():
				}
				return
			}
			if len(recs) == 0 {
				return
			}
			select {
			case batches <- auditRead{recs: recs}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return batches
}

// auditSkips are event types that neither move money nor carry a fee:
// the audit does not decode them.
var auditSkips = map[string]bool{
	domain.TypeMerchantRegistered: true, domain.TypeAPIKeysRotated: true, domain.TypeWebhookSecretRotated: true,
	domain.TypeAccountSettingsChanged: true, domain.TypePayoutSettingsChanged: true,
	domain.TypeConversionWaiting: true, domain.TypeBalanceNegative: true, domain.TypePaymentConverted: true,
	domain.TypeAddressReserved: true, domain.TypeAddressIndexesReserved: true,
}

func isInvoiceStream(stream string) bool { return strings.HasPrefix(stream, invoicePrefix) }

// invoicePrefix starts the name of every invoice's stream (domain.InvoiceStream).
const invoicePrefix = "invoice-"

// decodeParallel decodes a batch's events (but those auditSkips names) on
// workers goroutines.
func decodeParallel(recs []eventstore.RecordedEvent, out []domain.Event, errs []error, workers int) {
	chunk := (len(recs) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(recs); lo += chunk {
		hi := min(lo+chunk, len(recs))
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				if !auditSkips[recs[i].Type] {
					out[i], errs[i] = domain.DecodeStored(recs[i].Type, recs[i].Data, recs[i].Metadata)
				}
			}
		}(lo, hi)
	}
	wg.Wait()
}

// checkFees recomputes the fees and payouts an event records.
func (rep *AuditReport) checkFees(rec eventstore.RecordedEvent, e domain.Event) {
	switch c := e.(type) {
	case domain.InvoiceCreated, domain.DepositDetected, domain.InvoiceStatusChanged, domain.DepositConfirmed,
		domain.DepositReverted, domain.ConversionAbandoned:
		// The commands write these to their invoice's stream only, where
		// the invoice's own check reads them.
		rep.problem("event %s: %s outside an invoice's stream (in %s)", rec.ID, rec.Type, rec.Stream)
	case domain.ConversionExecuted:
		rep.Conversions++
		rep.FeesChecked++
		if err := c.Verify(); err != nil {
			rep.problem("event %s: %v", rec.ID, err)
		}
		if want := domain.ConversionFeeFor(c.Reason); c.Fee.Bps != want {
			rep.problem("event %s: a %s conversion charged %d bps, not %d", rec.ID, c.Reason, c.Fee.Bps, want)
		}
		rep.addRevenue(c.Fee.Bps, c.To, c.Fee.Fee)
		rep.addRevenue(0, c.From, c.Remainder) // rounding remainders: revenue at no tier
	case domain.PayoutRequested:
		rep.Payouts++
		rep.payouts[c.PayoutID] = &auditPayout{merchantID: c.MerchantID, status: string(domain.PayoutRequestedStatus), amount: c.Amount, asset: c.Asset,
			kind: c.Kind, invoiceID: c.SourceInvoiceID}
		if c.Kind == domain.PayoutKindRefund {
			// Checked with the invoice's own history (refundStep).
			rep.addRefundStep(c.SourceInvoiceID, refundStep{pos: rec.Position, eventID: rec.ID, amount: c.Amount})
		}
	case domain.PayoutSigned:
		if p := rep.payout(rec, c.PayoutID); p != nil {
			fee := c.NetworkFee
			p.status, p.txid, p.networkFee, p.feeConverted = string(domain.PayoutSignedStatus), c.TxID, &fee, c.FeeConverted
			if p.kind == domain.PayoutKindRefund {
				// The customer gets exactly the amount; the fee is
				// reserved on top (available → reserved).
				want := []domain.Posting{{Account: domain.AvailableAccount(p.merchantID), Amount: fee.Neg()},
					{Account: domain.ReservedAccount(p.merchantID), Amount: fee}}
				if fee.IsZero() {
					want = nil
				}
				if !c.Sent.Equal(p.amount) || fee.IsNegative() || !samePostings(c.Postings, want) {
					rep.problem("event %s: refund %s sends %s (fee %s on top, postings %v), not its %s", rec.ID, c.PayoutID, c.Sent, c.NetworkFee, c.Postings, p.amount)
				}
			} else if !c.Sent.Add(c.NetworkFee).Equal(p.amount) || len(c.Postings) != 0 {
				rep.problem("event %s: payout %s sends %s + fee %s, not its %s", rec.ID, c.PayoutID, c.Sent, c.NetworkFee, p.amount)
			}
		}
	case domain.PayoutSent:
		if p := rep.payout(rec, c.PayoutID); p != nil {
			p.status = string(domain.PayoutSentStatus)
		}
	case domain.PayoutConfirmed:
		var returned domain.Amount // of a fee the chain took less of than signed
		if c.FeeReturned != nil {
			returned = *c.FeeReturned
		}
		if p := rep.payout(rec, c.PayoutID); p != nil {
			p.status = string(domain.PayoutConfirmedStatus)
			if p.kind == domain.PayoutKindRefund {
				if !c.Sent.Equal(c.Amount) || !c.Amount.Equal(p.amount) || !c.NetOfNetworkFee || p.networkFee == nil || !c.NetworkFee.Add(returned).Equal(*p.networkFee) {
					rep.problem("event %s: refund %s confirmed %s (fee %s on top) for %s", rec.ID, c.PayoutID, c.Sent, c.NetworkFee, p.amount)
				}
			} else if !c.Sent.Add(c.NetworkFee).Add(returned).Equal(c.Amount) || !c.Amount.Equal(p.amount) || c.NetOfNetworkFee {
				rep.problem("event %s: payout %s confirmed %s + fee %s for %s", rec.ID, c.PayoutID, c.Sent, c.NetworkFee, p.amount)
			}
			// The fee goes to the network, or to the operator when it is
			// a native coin burned, charged in the token: all of it, to
			// the one account.
			var toNetwork, toOperator domain.Amount
			for _, ps := range c.Postings {
				switch ps.Account {
				case domain.NetworkFeeAccount:
					toNetwork = toNetwork.Add(ps.Amount)
				case domain.NetworkFeeRevenueAccount:
					toOperator = toOperator.Add(ps.Amount)
				}
			}
			want, other := toNetwork, toOperator
			if p.feeConverted {
				want, other = toOperator, toNetwork
			}
			if !want.Equal(c.NetworkFee) || !other.IsZero() {
				rep.problem("event %s: payout %s posts its fee %s as %s to %s and %s to %s", rec.ID, c.PayoutID, c.NetworkFee,
					toNetwork, domain.NetworkFeeAccount, toOperator, domain.NetworkFeeRevenueAccount)
			}
			fee := c.NetworkFee // what was paid, the read model's from now on
			p.networkFee = &fee
			rep.ended = append(rep.ended, c.PayoutID)
		}
	case domain.PayoutFailed:
		rep.payoutReleased(rec, c.PayoutID, domain.PayoutFailedStatus)
	case domain.PayoutCanceled:
		rep.payoutReleased(rec, c.PayoutID, domain.PayoutCanceledStatus)
	case domain.NetworkCostPaid:
		rep.checkCost(rec, c)
	}
}

// checkCost: a network cost moves exactly its amount from the operator's
// costs account to the network, in its asset.
func (rep *AuditReport) checkCost(rec eventstore.RecordedEvent, c domain.NetworkCostPaid) {
	if c.Amount.IsNegative() {
		rep.problem("event %s: network cost %s of %s is negative", rec.ID, c.Amount, c.TxID)
	}
	var toNetwork, fromOperator domain.Amount
	for _, p := range c.Postings {
		switch {
		case p.Asset != c.Asset:
			rep.problem("event %s: network cost in %s posts %s", rec.ID, c.Asset, p.Asset)
		case p.Account == domain.NetworkFeeAccount:
			toNetwork = toNetwork.Add(p.Amount)
		case p.Account == domain.OperatorNetworkCostsAccount:
			fromOperator = fromOperator.Add(p.Amount)
		default:
			rep.problem("event %s: network cost of %s posts to %s", rec.ID, c.TxID, p.Account)
		}
	}
	if !toNetwork.Equal(c.Amount) || !fromOperator.Equal(c.Amount.Neg()) {
		rep.problem("event %s: network cost %s %s of %s posts %s to the network and %s to the operator", rec.ID, c.Amount, c.Asset, c.TxID, toNetwork, fromOperator)
	}
	if rep.addresses { // for picd audit --chain only: they grow with the log
		tx := strings.ToLower(c.TxID)
		rep.costs[tx] = rep.costs[tx].Add(c.Amount)
	}
	m := rep.NetworkCosts[c.Kind]
	if m == nil {
		m = map[string]domain.Amount{}
		rep.NetworkCosts[c.Kind] = m
	}
	m[c.Asset] = m[c.Asset].Add(c.Amount)
}

// operatorIncome states, per asset, fee revenue less network costs paid,
// and what the ledger says is held on chain.
func (rep *AuditReport) operatorIncome() {
	rep.Held = map[string]domain.Amount{}
	for account, byAsset := range rep.Ledger {
		if account == domain.ExternalAccount || account == domain.NetworkFeeAccount {
			continue
		}
		for asset, v := range byAsset {
			rep.Held[asset] = rep.Held[asset].Add(v)
		}
	}
	for _, account := range []string{domain.FeeAccount, domain.NetworkFeeRevenueAccount, domain.OperatorNetworkCostsAccount} {
		for asset, v := range rep.Ledger[account] {
			inc := rep.OperatorIncome[asset]
			switch account {
			case domain.FeeAccount:
				inc.FeeRevenue = v
			case domain.NetworkFeeRevenueAccount:
				inc.NetworkFeeRevenue = v
			default:
				inc.NetworkCosts = v.Neg()
			}
			inc.Income = inc.FeeRevenue.Add(inc.NetworkFeeRevenue).Sub(inc.NetworkCosts)
			rep.OperatorIncome[asset] = inc
		}
	}
}

func (rep *AuditReport) addDeposit(asset, address string, v domain.Amount) {
	if !rep.addresses {
		return
	}
	m := rep.Deposits[asset]
	if m == nil {
		m = map[string]domain.Amount{}
		rep.Deposits[asset] = m
	}
	m[address] = m[address].Add(v)
}

// InFlightPayout is a payout signed or sent and not yet confirmed: its
// coins may have left the chain while the ledger still reserves them.
type InFlightPayout struct {
	PayoutID string        `json:"payout_id"`
	Asset    string        `json:"asset"`
	Amount   domain.Amount `json:"amount"`
	Status   string        `json:"status"`
	TxID     string        `json:"txid"`
}

// CostOf is the network cost the log records for a transaction (an audit
// with AuditOptions.Addresses).
func (r AuditReport) CostOf(txid string) domain.Amount { return r.costs[strings.ToLower(txid)] }

// PayoutStatus is a payout's status at the log's end ("" if unknown). An
// ended payout's is known in an audit with AuditOptions.Addresses only.
func (r AuditReport) PayoutStatus(id string) string {
	if p := r.payouts[id]; p != nil {
		return p.status
	}
	return r.endedStatus[id]
}

// InFlightPayouts lists the payouts signed or sent, not yet confirmed.
func (r AuditReport) InFlightPayouts() []InFlightPayout {
	var out []InFlightPayout
	for id, p := range r.payouts {
		if p.status == string(domain.PayoutSignedStatus) || p.status == string(domain.PayoutSentStatus) {
			out = append(out, InFlightPayout{PayoutID: id, Asset: p.asset, Amount: p.amount, Status: p.status, TxID: p.txid})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PayoutID < out[j].PayoutID })
	return out
}

// payoutReleased ends a payout that paid nothing: a refund's amount may
// be refunded again.
func (rep *AuditReport) payoutReleased(rec eventstore.RecordedEvent, id string, status domain.PayoutStatus) {
	if p := rep.payout(rec, id); p != nil {
		p.status = string(status)
		if p.kind == domain.PayoutKindRefund {
			rep.addRefundStep(p.invoiceID, refundStep{pos: rec.Position, eventID: rec.ID, amount: p.amount, release: true})
		}
		rep.ended = append(rep.ended, id)
	}
}

// addRefundStep keeps a refund of an invoice, for the audit to apply to
// the invoice now and again whenever it rebuilds the invoice.
func (rep *AuditReport) addRefundStep(invoiceID string, st refundStep) {
	rep.refunds[invoiceID] = append(rep.refunds[invoiceID], st)
	rep.refundsDue = append(rep.refundsDue, dueRefund{invoiceID: invoiceID, step: st})
}

type dueRefund struct {
	invoiceID string
	step      refundStep
}

// checkLedger sums an event's postings into the ledger, in log order.
func (rep *AuditReport) checkLedger(rec eventstore.RecordedEvent, e domain.Event) {
	m, ok := e.(domain.MoneyEvent)
	if !ok {
		return
	}
	rep.MoneyEvents++
	postings := m.LedgerPostings()
	if err := domain.CheckBalanced(postings); err != nil {
		rep.problem("event %s (%s): %v", rec.ID, rec.Type, err)
	}
	for _, p := range postings {
		byAsset := rep.Ledger[p.Account]
		if byAsset == nil {
			byAsset = map[string]domain.Amount{}
			rep.Ledger[p.Account] = byAsset
		}
		sum := byAsset[p.Asset].Add(p.Amount)
		byAsset[p.Asset] = sum
		// Running balances in log order: a merchant never owes us, except
		// in available after a reversal (a debt: listed apart, rule 6).
		if sum.IsNegative() && strings.HasPrefix(p.Account, "merchant:") && !strings.HasSuffix(p.Account, ":available") {
			rep.problem("event %s (%s): %s %s went negative: %s", rec.ID, rec.Type, p.Account, p.Asset, sum)
		}
	}
}

func (rep *AuditReport) payout(rec eventstore.RecordedEvent, id string) *auditPayout {
	p := rep.payouts[id]
	if p == nil {
		// Ended payouts are let go: an event after the end is as wrong.
		rep.problem("event %s: payout %s is not open (never requested, or already ended)", rec.ID, id)
	}
	return p
}

func (rep *AuditReport) addRevenue(bps int64, asset string, fee domain.Amount) {
	m := rep.FeeRevenue[bps]
	if m == nil {
		m = map[string]domain.Amount{}
		rep.FeeRevenue[bps] = m
	}
	m[asset] = m[asset].Add(fee)
}

// verifyFee recomputes a fee and checks its tier is one of tiers.
func (rep *AuditReport) verifyFee(rec eventstore.RecordedEvent, f domain.FeeCalc, tiers ...int64) {
	rep.FeesChecked++
	if err := f.Verify(); err != nil {
		rep.problem("event %s: %v", rec.ID, err)
	}
	if !slices.Contains(tiers, f.Bps) {
		rep.problem("event %s: fee at %d bps is no tier of ours here", rec.ID, f.Bps)
	}
}

// listDebts collects the available balances that end negative.
func (rep *AuditReport) listDebts() {
	for account, byAsset := range rep.Ledger {
		if !strings.HasPrefix(account, "merchant:") || !strings.HasSuffix(account, ":available") {
			continue
		}
		for asset, v := range byAsset {
			if v.IsNegative() {
				if rep.Debts[account] == nil {
					rep.Debts[account] = map[string]domain.Amount{}
				}
				rep.Debts[account][asset] = v
			}
		}
	}
}

// checkFeeAccount: what the fee account holds is what the tiers earned.
func (rep *AuditReport) checkFeeAccount() {
	byAsset := map[string]domain.Amount{}
	for _, m := range rep.FeeRevenue {
		for asset, v := range m {
			byAsset[asset] = byAsset[asset].Add(v)
		}
	}
	for asset, v := range rep.Ledger[domain.FeeAccount] {
		if !byAsset[asset].Equal(v) {
			rep.problem("fees %s: the fee account holds %s, the tiers earned %s", asset, v, byAsset[asset])
		}
		delete(byAsset, asset)
	}
	for asset, v := range byAsset {
		if !v.IsZero() {
			rep.problem("fees %s: the tiers earned %s, the fee account holds nothing", asset, v)
		}
	}
}

func (rep *AuditReport) compareBalances(ctx context.Context, db sqldb.DB) error {
	rows, err := db.Read.QueryContext(ctx, `SELECT merchant_id, asset, available, pending, reserved FROM balances`)
	if err != nil {
		return fmt.Errorf("audit: balances: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var merchantID, asset, available, pending, reserved string
		if err := rows.Scan(&merchantID, &asset, &available, &pending, &reserved); err != nil {
			return err
		}
		rep.RowsCompared++
		for _, b := range [...]struct{ bucket, got string }{{"available", available}, {"pending", pending}, {"reserved", reserved}} {
			account := "merchant:" + merchantID + ":" + b.bucket
			seen[account+"/"+asset] = true
			want := rep.Ledger[account][asset]
			got, err := domain.ParseAmount(strings.TrimPrefix(b.got, "-"), 18)
			if err == nil && strings.HasPrefix(b.got, "-") {
				got = got.Neg()
			}
			if err != nil || !want.Equal(got) {
				rep.problem("balance %s %s: read model %s, log %s", account, asset, b.got, want)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, account := range rep.Accounts() {
		if _, _, isMerchant := merchantAccount(account); !isMerchant {
			continue
		}
		for asset, sum := range rep.Ledger[account] {
			if !seen[account+"/"+asset] && !sum.IsZero() {
				rep.problem("balance %s %s: missing from the read model, log says %s", account, asset, sum)
			}
		}
	}
	return nil
}

// Accounts lists the ledger's accounts in order.
func (r AuditReport) Accounts() []string {
	out := make([]string, 0, len(r.Ledger))
	for a := range r.Ledger {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Tiers lists the fee tiers that earned something, in order.
func (r AuditReport) Tiers() []int64 {
	out := make([]int64, 0, len(r.FeeRevenue))
	for bps := range r.FeeRevenue {
		out = append(out, bps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// samePostings compares postings by account and amount (the asset is the
// event's; the ledger check covers it).
func samePostings(got, want []domain.Posting) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].Account != want[i].Account || !got[i].Amount.Equal(want[i].Amount) {
			return false
		}
	}
	return true
}
