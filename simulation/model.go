// Package simulation holds the deterministic simulation test of the money
// rules (simulation_test.go) and its reference model (this file).
//
// The model is written from ../shared/API.md, "Money rules (decided
// 2026-12-03)", and docs/money.md, not from the production code: it keeps
// its own state in plain decimals and imports nothing of the gateway. A
// reader can check each method against the rule it names.
package simulation

import (
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"
)

// Deposit states.
const (
	seen = iota
	confirmed
	final
	reverted
)

// Invoice statuses (API.md, the status table and rule 5).
const (
	stNew           = "new"
	stPartiallyPaid = "partially_paid"
	stConfirming    = "confirming"
	stPaid          = "paid"
	stExpired       = "expired"
	stReverted      = "reverted"
)

// MAsset is what the model knows of an asset: its precision and depths.
// In the simulator a payment is final one block past its confirmations.
type MAsset struct {
	Code          string
	Decimals      int32
	Confirmations int
}

// MPayout is a merchant's payout setting of one asset.
type MPayout struct {
	Instant bool
	Min     decimal.Decimal
}

type mMerchant struct {
	consolidateTo string
	payouts       map[string]MPayout
}

// MInvoice is the model of one invoice.
type MInvoice struct {
	ID, Merchant, Asset string
	Amount, PayAmount   decimal.Decimal
	SettleAs            string
	Price               *MPrice // nil when priced in the asset
	createdBps          int64
	ExpiresAt           time.Time
	Status              string
	Statuses            []string // every status entered, in order (one webhook each)
	deposits            []*mDeposit
	tierFixed           bool
	bps                 int64
	convertTo           string
	unconverted         bool
	everCredited        bool
	refunded            decimal.Decimal // refunds sent back to the customer
}

type mDeposit struct {
	id      string
	inv     *MInvoice
	amount  decimal.Decimal
	conf    int
	state   int
	charged decimal.Decimal // its share of the invoice's fee
	round   int             // times seen
}

type bkey struct{ merchant, asset string }

// Balance is a merchant's balance of one asset.
type Balance struct{ Available, Pending decimal.Decimal }

type mWait struct {
	dep      *mDeposit
	round    int
	net      decimal.Decimal
	since    time.Time
	next     time.Time
	attempts int
}

// Model is the reference model. Its clock moves only when the harness says.
type Model struct {
	assets    map[string]MAsset
	order     []string // asset listing order (consolidation goes in it)
	rates     map[[2]string]decimal.Decimal
	priceUp   bool
	maxWait   time.Duration
	Now       time.Time
	merchants map[string]*mMerchant
	Invoices  map[string]*MInvoice
	deposits  map[string]*mDeposit
	bal       map[bkey]*Balance
	// Paid out is every payout requested, by merchant and asset.
	PaidOut map[bkey]decimal.Decimal
	waits   []*mWait
}

// NewModel builds an empty model.
func NewModel(assets []MAsset, rates map[[2]string]decimal.Decimal, maxWait time.Duration, now time.Time) *Model {
	m := &Model{assets: map[string]MAsset{}, rates: rates, priceUp: true, maxWait: maxWait, Now: now,
		merchants: map[string]*mMerchant{}, Invoices: map[string]*MInvoice{}, deposits: map[string]*mDeposit{},
		bal: map[bkey]*Balance{}, PaidOut: map[bkey]decimal.Decimal{}}
	for _, a := range assets {
		m.assets[a.Code] = a
		m.order = append(m.order, a.Code)
	}
	return m
}

// feeOf is rule 1's figure: round_half_up(x × bps / 10,000) at the asset's unit.
func feeOf(x decimal.Decimal, bps int64, dec int32) decimal.Decimal {
	return x.Mul(decimal.NewFromInt(bps)).DivRound(decimal.NewFromInt(10000), 40).Round(dec)
}

func (m *Model) b(merchant, asset string) *Balance {
	k := bkey{merchant, asset}
	if m.bal[k] == nil {
		m.bal[k] = &Balance{}
	}
	return m.bal[k]
}

// BalanceOf returns a merchant's balance of asset.
func (m *Model) BalanceOf(merchant, asset string) Balance { return *m.b(merchant, asset) }

// Merchant registers a merchant with its settings.
func (m *Model) Merchant(id, consolidateTo string, payouts map[string]MPayout) {
	m.merchants[id] = &mMerchant{consolidateTo: consolidateTo, payouts: payouts}
}

// SetPrices says whether the price feed answers.
func (m *Model) SetPrices(up bool) { m.priceUp = up }

// converts is where an invoice's payments would be converted now.
func (m *Model) converts(inv *MInvoice) string {
	if inv.SettleAs != "" {
		return inv.SettleAs
	}
	if to := m.merchants[inv.Merchant].consolidateTo; to != inv.Asset {
		return to
	}
	return ""
}

// MPrice is an invoice's fiat price: Amount in Currency, at Rate (Currency
// per one unit of the asset).
type MPrice struct {
	Currency     string
	Amount, Rate decimal.Decimal
}

func (p *MPrice) String() string {
	if p == nil {
		return "none"
	}
	return fmt.Sprintf("%s %s at %s", p.Amount, p.Currency, p.Rate)
}

// FiatAmount is the asset amount of price in currency (API.md, additions
// of 2026-12-03: "the asset amount is computed at the oracle rate at
// creation, rounded up to the asset's unit"): the least whole number of
// the asset's units worth at least the price at rate, so that
// amount × rate ≥ price and one unit less falls short. ok is false when
// the feed gives no price (the API answers 503).
func (m *Model) FiatAmount(asset, currency string, price decimal.Decimal) (amount, rate decimal.Decimal, ok bool) {
	rate, ok = m.rates[[2]string{asset, currency}]
	if !m.priceUp || !ok || !rate.IsPositive() {
		return decimal.Zero, decimal.Zero, false
	}
	unit := decimal.New(1, -m.assets[asset].Decimals)
	// A first guess from a long division, then made exact with
	// multiplications only (which decimals do without rounding).
	amount = price.DivRound(rate, m.assets[asset].Decimals+30).RoundCeil(m.assets[asset].Decimals)
	for amount.Mul(rate).LessThan(price) {
		amount = amount.Add(unit)
	}
	for amount.Sub(unit).Mul(rate).GreaterThanOrEqual(price) {
		amount = amount.Sub(unit)
	}
	return amount, rate, true
}

// CreateInvoice records an invoice; its fee before any payment is that of
// amount at the tier it expects (rule 2: 50 bps when it will convert).
func (m *Model) CreateInvoice(id, merchant, asset string, amount, payAmount decimal.Decimal, settleAs string, expiresAt time.Time) *MInvoice {
	inv := &MInvoice{ID: id, Merchant: merchant, Asset: asset, Amount: amount, PayAmount: payAmount, SettleAs: settleAs,
		ExpiresAt: expiresAt, Status: stNew}
	inv.createdBps = 25
	if m.converts(inv) != "" {
		inv.createdBps = 50
	}
	m.Invoices[id] = inv
	return inv
}

// Received is what live payments add up to; Due what is still to send.
func (inv *MInvoice) Received() decimal.Decimal {
	var r decimal.Decimal
	for _, d := range inv.deposits {
		if d.state != reverted {
			r = r.Add(d.amount)
		}
	}
	return r
}

func (inv *MInvoice) Due() decimal.Decimal {
	due := inv.PayAmount.Sub(inv.Received())
	if due.IsNegative() {
		return decimal.Zero
	}
	return due
}

func (inv *MInvoice) credited() decimal.Decimal {
	var c decimal.Decimal
	for _, d := range inv.deposits {
		if d.state == confirmed || d.state == final {
			c = c.Add(d.amount)
		}
	}
	return c
}

func (inv *MInvoice) chargedTotal() decimal.Decimal {
	var c decimal.Decimal
	for _, d := range inv.deposits {
		if d.state == confirmed || d.state == final {
			c = c.Add(d.charged)
		}
	}
	return c
}

// Fee is rule 1: what the invoice was charged; the fee of amount before
// anything was credited.
func (m *Model) Fee(inv *MInvoice) decimal.Decimal {
	dec := m.assets[inv.Asset].Decimals
	if !inv.everCredited {
		return feeOf(inv.Amount, inv.createdBps, dec)
	}
	return feeOf(inv.credited(), inv.bps, dec)
}

// restatus applies the status table and rule 5 after a change.
func (m *Model) restatus(inv *MInvoice) {
	var received, conf decimal.Decimal
	for _, d := range inv.deposits {
		if d.state == reverted {
			continue
		}
		received = received.Add(d.amount)
		if d.state != seen {
			conf = conf.Add(d.amount)
		}
	}
	to := inv.Status
	switch inv.Status {
	case stExpired:
	case stPaid, stReverted:
		to = stReverted
		if conf.Cmp(inv.PayAmount) >= 0 {
			to = stPaid
		}
	default:
		switch {
		case conf.Cmp(inv.PayAmount) >= 0:
			to = stPaid
		case received.Cmp(inv.PayAmount) >= 0:
			to = stConfirming
		case received.IsPositive():
			to = stPartiallyPaid
		default:
			to = stNew
		}
	}
	if to != inv.Status {
		inv.Status = to
		inv.Statuses = append(inv.Statuses, to)
	}
}

// Pay: a payment seen with no confirmation is pending, gross.
func (m *Model) Pay(invoiceID, depositID string, amount decimal.Decimal) {
	inv := m.Invoices[invoiceID]
	d := &mDeposit{id: depositID, inv: inv, amount: amount, round: 1}
	inv.deposits = append(inv.deposits, d)
	m.deposits[depositID] = d
	m.b(inv.Merchant, inv.Asset).Pending = m.b(inv.Merchant, inv.Asset).Pending.Add(amount)
	m.restatus(inv)
}

// Due lists the deposits the next blocks will confirm and finalize, so the
// harness can check the chain agrees before it applies them in its order.
func (m *Model) Mine(blocks int) (toConfirm, toFinal map[string]bool) {
	toConfirm, toFinal = map[string]bool{}, map[string]bool{}
	for id, d := range m.deposits {
		if d.state == reverted {
			continue
		}
		d.conf += blocks
		need := m.assets[d.inv.Asset].Confirmations
		if d.state == seen && d.conf >= need {
			toConfirm[id] = true
		}
		if (d.state == confirmed || (d.state == seen && d.conf >= need)) && d.conf > need {
			toFinal[id] = true
		}
	}
	return toConfirm, toFinal
}

// Confirm is rule 1 and 2: the first credit fixes the tier; the invoice's
// fee becomes that of all it credited; this deposit pays the difference.
func (m *Model) Confirm(id string) {
	d := m.deposits[id]
	inv := d.inv
	if !inv.tierFixed && !inv.unconverted {
		inv.tierFixed = true
		inv.convertTo = m.converts(inv)
		inv.bps = 25
		if inv.convertTo != "" {
			inv.bps = 50
		}
	}
	before := inv.chargedTotal()
	after := feeOf(inv.credited().Add(d.amount), inv.bps, m.assets[inv.Asset].Decimals)
	d.charged = after.Sub(before)
	d.state = confirmed
	inv.everCredited = true
	bal := m.b(inv.Merchant, inv.Asset)
	bal.Pending = bal.Pending.Sub(d.charged)
	m.restatus(inv)
}

// Finalize is rule 4: the net moves from pending to available.
func (m *Model) Finalize(id string) {
	d := m.deposits[id]
	net := d.amount.Sub(d.charged)
	bal := m.b(d.inv.Merchant, d.inv.Asset)
	bal.Pending, bal.Available = bal.Pending.Sub(net), bal.Available.Add(net)
	d.state = final
}

// account is the balance bucket a deposit's net is in.
func (bal *Balance) account(d *mDeposit) *decimal.Decimal {
	if d.state == final {
		return &bal.Available
	}
	return &bal.Pending
}

// Revert is rule 5: the payment leaves; a credited one gets back the
// difference it made to the invoice's fee; a fee difference its share
// does not cover is carried by the newest other credited deposit (not yet
// final first). With reinclude it is seen again at once (back in the mempool).
func (m *Model) Revert(id string, reinclude bool) {
	d := m.deposits[id]
	inv := d.inv
	bal := m.b(inv.Merchant, inv.Asset)
	if d.state == seen {
		bal.Pending = bal.Pending.Sub(d.amount)
	} else {
		rest := inv.credited().Sub(d.amount)
		refund := inv.chargedTotal().Sub(feeOf(rest, inv.bps, m.assets[inv.Asset].Decimals))
		acc := bal.account(d)
		*acc = acc.Sub(d.amount.Sub(d.charged))
		if shift := d.charged.Sub(refund); !shift.IsZero() {
			var target *mDeposit
			for i := len(inv.deposits) - 1; i >= 0 && target == nil; i-- {
				if o := inv.deposits[i]; o != d && o.state == confirmed {
					target = o
				}
			}
			for i := len(inv.deposits) - 1; i >= 0 && target == nil; i-- {
				if o := inv.deposits[i]; o != d && o.state == final {
					target = o
				}
			}
			target.charged = target.charged.Add(shift)
			tacc := bal.account(target)
			*tacc = tacc.Sub(shift)
		}
	}
	d.state, d.charged, d.conf = reverted, decimal.Zero, 0
	m.restatus(inv)
	if reinclude {
		d.state, d.round = seen, d.round+1
		bal.Pending = bal.Pending.Add(d.amount)
		m.restatus(inv)
	}
}

// Reorgable lists the deposits a reorganisation of depth blocks removes.
func (m *Model) Reorgable(depth int) map[string]bool {
	out := map[string]bool{}
	for id, d := range m.deposits {
		if d.state != reverted && d.conf >= 1 && d.conf <= depth {
			out[id] = true
		}
	}
	return out
}

// Settle is what happens when a payment is final: conversion (rule 2 and
// 3), then the instant payout of at most what is available (rule 6).
// A settlement with no price waits on its own (rule 3).
func (m *Model) Settle(id string) {
	d := m.deposits[id]
	net := d.amount.Sub(d.charged)
	if m.settle(d, d.round, net, false) {
		m.waits = append(m.waits, &mWait{dep: d, round: d.round, net: net, since: m.Now, next: m.Now.Add(5 * time.Second)})
	}
}

func (m *Model) settle(d *mDeposit, round int, net decimal.Decimal, giveUp bool) (waiting bool) {
	if d.state != final || d.round != round {
		return false // reorganised away since
	}
	inv := d.inv
	asset, amount := inv.Asset, net
	if to := inv.convertTo; to != "" && !inv.unconverted && amount.IsPositive() {
		if giveUp {
			// Rule 3: credited unconverted at 25 bps; the difference comes
			// back, each credited payment's to the account its net is in:
			// its share becomes its difference to the 25 bps fee of what
			// was credited up to it (docs/money.md).
			inv.unconverted, inv.bps, inv.convertTo = true, 25, ""
			bal := m.b(inv.Merchant, asset)
			var cum, before decimal.Decimal
			for _, o := range inv.deposits {
				if o.state != confirmed && o.state != final {
					continue
				}
				cum = cum.Add(o.amount)
				after := feeOf(cum, 25, m.assets[asset].Decimals)
				back := o.charged.Sub(after.Sub(before))
				before = after
				o.charged = o.charged.Sub(back)
				acc := bal.account(o)
				*acc = acc.Add(back)
				if o == d {
					amount = amount.Add(back)
				}
			}
		} else {
			if !m.priceUp {
				return true
			}
			if m.b(inv.Merchant, asset).Available.Cmp(amount) >= 0 {
				if toAmount, ok := m.convert(inv.Merchant, asset, to, amount, 0); ok {
					asset, amount = to, toAmount
				}
			}
		}
	}
	m.instant(inv.Merchant, asset, amount)
	return false
}

// convert is rule 2's arithmetic: the amount converted rounds down to the
// target's unit; the part of the source that the rounding left (what the
// converted amount is worth, rounded up, taken from it) is fee revenue;
// feeBps is charged on the converted amount. It returns what is credited.
func (m *Model) convert(merchant, from, to string, amount decimal.Decimal, feeBps int64) (decimal.Decimal, bool) {
	rate := m.rates[[2]string{from, to}]
	toDec := m.assets[to].Decimals
	gross := amount.Mul(rate).RoundDown(toDec)
	fee := feeOf(gross, feeBps, toDec)
	net := gross.Sub(fee)
	if !net.IsPositive() {
		return decimal.Zero, false
	}
	bf, bt := m.b(merchant, from), m.b(merchant, to)
	bf.Available = bf.Available.Sub(amount)
	bt.Available = bt.Available.Add(net)
	return net, true
}

// instant pays out at once when the asset's mode is instant: at most what
// is available, nothing when that is below instant_min_amount.
func (m *Model) instant(merchant, asset string, amount decimal.Decimal) {
	p, ok := m.merchants[merchant].payouts[asset]
	if !ok || !p.Instant || amount.LessThan(p.Min) || !amount.IsPositive() {
		return
	}
	avail := m.b(merchant, asset).Available
	if avail.LessThan(p.Min) || !avail.IsPositive() {
		return
	}
	if avail.LessThan(amount) {
		amount = avail
	}
	m.payout(merchant, asset, amount)
}

func (m *Model) payout(merchant, asset string, amount decimal.Decimal) {
	bal := m.b(merchant, asset)
	bal.Available = bal.Available.Sub(amount)
	k := bkey{merchant, asset}
	m.PaidOut[k] = m.PaidOut[k].Add(amount)
}

// Tick moves the clock without running the expiry (as between two runs of
// the gateway's expiry loop).
func (m *Model) Tick(d time.Duration) { m.Now = m.Now.Add(d) }

// Advance moves the clock: invoices past their window without enough
// payment expire; due waits retry (converted when a price is there,
// unconverted after the longest wait, else later with backoff).
func (m *Model) Advance(d time.Duration) {
	m.Now = m.Now.Add(d)
	ids := make([]string, 0, len(m.Invoices))
	for id := range m.Invoices {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		inv := m.Invoices[id]
		if (inv.Status == stNew || inv.Status == stPartiallyPaid) && !m.Now.Before(inv.ExpiresAt) {
			inv.Status = stExpired
			inv.Statuses = append(inv.Statuses, stExpired)
		}
	}
}

// RetryWaits is the settlement's retry pass at the current time.
func (m *Model) RetryWaits() {
	due := []*mWait{}
	for _, w := range m.waits {
		if !w.next.After(m.Now) {
			due = append(due, w)
		}
	}
	sort.SliceStable(due, func(i, j int) bool { return due[i].next.Before(due[j].next) })
	for _, w := range due {
		giveUp := m.Now.Sub(w.since) >= m.maxWait
		if m.settle(w.dep, w.round, w.net, giveUp) {
			delay := 5 * time.Second << min(w.attempts+1, 16)
			if delay > 5*time.Minute {
				delay = 5 * time.Minute
			}
			w.attempts++
			w.next = m.Now.Add(delay)
			continue
		}
		m.dropWait(w)
	}
}

func (m *Model) dropWait(w *mWait) {
	for i, x := range m.waits {
		if x == w {
			m.waits = append(m.waits[:i], m.waits[i+1:]...)
			return
		}
	}
}

// Withdraw takes the whole available balance, if any.
func (m *Model) Withdraw(merchant, asset string) bool {
	avail := m.b(merchant, asset).Available
	if !avail.IsPositive() {
		return false
	}
	m.payout(merchant, asset, avail)
	return true
}

// Refund outcomes.
const (
	refundOK           = "ok"
	refundExceeded     = "exceeded"     // more than the invoice has left to refund (409)
	refundInsufficient = "insufficient" // the available balance does not cover it, or is a debt (409)
)

// Refund sends an invoice's money back to its customer (API.md, additions
// of 2026-12-03): the refunds of one invoice never exceed what it received
// net of its fee (the platform fee is not returned): its credited payments
// less the fee they were charged, less its earlier refunds. A zero amount
// refunds all that is left. Like every payout it is paid only out of the
// available balance, never out of a debt (rule 6). The limit is checked
// first. The network fee is the merchant's on top; the simulator's is zero.
func (m *Model) Refund(invoiceID string, amount decimal.Decimal) (decimal.Decimal, string) {
	inv := m.Invoices[invoiceID]
	room := inv.credited().Sub(inv.chargedTotal()).Sub(inv.refunded)
	if amount.IsZero() {
		if !room.IsPositive() {
			return decimal.Zero, refundExceeded
		}
		amount = room
	} else if amount.GreaterThan(room) {
		return decimal.Zero, refundExceeded
	}
	if avail := m.b(inv.Merchant, inv.Asset).Available; avail.IsNegative() || amount.GreaterThan(avail) {
		return decimal.Zero, refundInsufficient
	}
	inv.refunded = inv.refunded.Add(amount)
	m.payout(inv.Merchant, inv.Asset, amount)
	return amount, refundOK
}

// Consolidate converts every other available balance into to, in listing
// order, charging the other 25 bps (rule 2).
func (m *Model) Consolidate(merchant, to string) {
	for _, a := range m.order {
		if a == to {
			continue
		}
		if avail := m.b(merchant, a).Available; avail.IsPositive() {
			m.convert(merchant, a, to, avail, 25)
		}
	}
}

// String describes an invoice for failure messages.
func (inv *MInvoice) String() string {
	return fmt.Sprintf("%s %s %s amount %s: %s received %s due %s (statuses %v)", inv.ID, inv.Merchant, inv.Asset, inv.Amount, inv.Status, inv.Received(), inv.Due(), inv.Statuses)
}
