package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Status of an invoice.
type Status string

const (
	StatusNew           Status = "new"
	StatusPartiallyPaid Status = "partially_paid"
	StatusConfirming    Status = "confirming"
	StatusPaid          Status = "paid"
	StatusExpired       Status = "expired"
)

// Terminal reports whether no payment can change the status any more.
func (s Status) Terminal() bool { return s == StatusPaid || s == StatusExpired }

// ParseStatus accepts the API's status names. Errors: ErrValidation.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusNew, StatusPartiallyPaid, StatusConfirming, StatusPaid, StatusExpired:
		return st, nil
	}
	return "", fmt.Errorf("%w: unknown status %q", ErrValidation, s)
}

// Invoice limits.
const (
	DefaultExpiresIn = 60 * time.Minute
	MinExpiresIn     = 60 * time.Second
	MaxExpiresIn     = 7 * 24 * time.Hour
	maxOrderIDLen    = 200
)

// NewInvoice is a validated request to create an invoice.
type NewInvoice struct {
	InvoiceID  string
	MerchantID string
	Asset      Asset
	Amount     Amount
	PayAmount  Amount // Amount, or slightly more when the address is reused
	PayAddress string
	// AddressIndex is the HD index of PayAddress, or -1 for an address we
	// did not derive (a reused or static one).
	AddressIndex int64
	SettleAsset  string
	OrderID      string
	ExpiresIn    time.Duration
}

// CreateInvoice decides the InvoiceCreated event.
// Errors: ErrInvalidAmount, ErrValidation, ErrUnsupportedAsset.
func CreateInvoice(n NewInvoice, assets Assets, now time.Time) (InvoiceCreated, error) {
	if !n.Amount.IsPositive() {
		return InvoiceCreated{}, fmt.Errorf("%w: amount must be greater than 0", ErrInvalidAmount)
	}
	if _, err := n.Amount.BaseUnits(n.Asset.Decimals); err != nil {
		return InvoiceCreated{}, err
	}
	if n.PayAmount.LessThan(n.Amount) {
		return InvoiceCreated{}, fmt.Errorf("domain: pay_amount %s below amount %s", n.PayAmount, n.Amount)
	}
	if n.SettleAsset != "" {
		if _, err := assets.Lookup(n.SettleAsset); err != nil {
			return InvoiceCreated{}, err
		}
		if n.SettleAsset == n.Asset.Code {
			n.SettleAsset = "" // settling into the same coin is no conversion
		}
	}
	if len(n.OrderID) > maxOrderIDLen || strings.IndexFunc(n.OrderID, unicode.IsControl) >= 0 {
		return InvoiceCreated{}, fmt.Errorf("%w: order_id must be at most %d printable characters", ErrValidation, maxOrderIDLen)
	}
	if n.ExpiresIn == 0 {
		n.ExpiresIn = DefaultExpiresIn
	}
	if n.ExpiresIn < MinExpiresIn || n.ExpiresIn > MaxExpiresIn {
		return InvoiceCreated{}, fmt.Errorf("%w: expires_in must be between %d and %d seconds", ErrValidation,
			int(MinExpiresIn.Seconds()), int(MaxExpiresIn.Seconds()))
	}
	if n.PayAddress == "" {
		return InvoiceCreated{}, fmt.Errorf("domain: invoice without pay address")
	}
	now = now.UTC().Truncate(time.Millisecond)
	return InvoiceCreated{
		InvoiceID: n.InvoiceID, MerchantID: n.MerchantID, Asset: n.Asset.Code, Decimals: n.Asset.Decimals,
		Amount: n.Amount, PayAmount: n.PayAmount, PayAddress: n.PayAddress, AddressIndex: n.AddressIndex,
		RequiredConfirmations: n.Asset.Confirmations, SettleAsset: n.SettleAsset, OrderID: n.OrderID,
		Fee:       ComputeFee(n.Amount, TierBps(n.SettleAsset != ""), n.Asset.Decimals),
		CreatedAt: now, ExpiresAt: now.Add(n.ExpiresIn),
	}, nil
}

type deposit struct {
	id            string
	amount        Amount
	confirmations int
	confirmed     bool
	reverted      bool
	fee           Amount
}

// Invoice is the aggregate behind an invoice-<id> stream.
type Invoice struct {
	created  InvoiceCreated
	exists   bool
	status   Status
	deposits map[string]*deposit
	order    []string
}

// Apply folds an event of the invoice's stream into its state.
func (inv *Invoice) Apply(e Event) {
	switch e := e.(type) {
	case InvoiceCreated:
		*inv = Invoice{created: e, exists: true, status: StatusNew, deposits: map[string]*deposit{}}
	case DepositDetected:
		if _, again := inv.deposits[e.DepositID]; !again {
			inv.order = append(inv.order, e.DepositID)
		}
		inv.deposits[e.DepositID] = &deposit{id: e.DepositID, amount: e.Amount, confirmations: e.Confirmations}
	case DepositConfirmed:
		d := inv.deposits[e.DepositID]
		d.confirmed, d.confirmations, d.fee = true, e.Confirmations, e.Fee.Fee
	case DepositReverted:
		inv.deposits[e.DepositID].reverted = true
	case InvoiceStatusChanged:
		inv.status = e.To
	}
}

func (inv *Invoice) Exists() bool            { return inv.exists }
func (inv *Invoice) Created() InvoiceCreated { return inv.created }
func (inv *Invoice) Status() Status          { return inv.status }
func (inv *Invoice) ID() string              { return inv.created.InvoiceID }
func (inv *Invoice) MerchantID() string      { return inv.created.MerchantID }
func (inv *Invoice) ExpiresAt() time.Time    { return inv.created.ExpiresAt }
func (inv *Invoice) feeBps() int64           { return inv.created.Fee.Bps }
func (inv *Invoice) asset() string           { return inv.created.Asset }
func (inv *Invoice) AmountReceived() Amount  { r, _ := inv.totals(); return r }

// totals are the sums of live (not reverted) deposits: seen and confirmed.
func (inv *Invoice) totals() (received, confirmed Amount) {
	for _, id := range inv.order {
		d := inv.deposits[id]
		if d.reverted {
			continue
		}
		received = received.Add(d.amount)
		if d.confirmed {
			confirmed = confirmed.Add(d.amount)
		}
	}
	return received, confirmed
}

// statusFor is the status the payments justify; terminal statuses stay.
func (inv *Invoice) statusFor(received, confirmed Amount) Status {
	if inv.status.Terminal() {
		return inv.status
	}
	target := inv.created.PayAmount
	switch {
	case confirmed.Cmp(target) >= 0:
		return StatusPaid
	case received.Cmp(target) >= 0:
		return StatusConfirming
	case received.IsPositive():
		return StatusPartiallyPaid
	}
	return StatusNew
}

// settle applies events to a scratch copy and appends the status change they cause.
func (inv *Invoice) settle(evs []Event, now time.Time) []Event {
	next := inv.clone()
	for _, e := range evs {
		next.Apply(e)
	}
	received, confirmed := next.totals()
	if to := next.statusFor(received, confirmed); to != next.status {
		evs = append(evs, InvoiceStatusChanged{InvoiceID: inv.ID(), MerchantID: inv.MerchantID(), From: next.status, To: to,
			AmountReceived: received, At: now.UTC()})
	}
	return evs
}

func (inv *Invoice) clone() *Invoice {
	c := *inv
	c.deposits = make(map[string]*deposit, len(inv.deposits))
	for k, d := range inv.deposits {
		dd := *d
		c.deposits[k] = &dd
	}
	c.order = append([]string(nil), inv.order...)
	return &c
}

// ObservedDeposit is a payment a chain watcher saw to the invoice's address.
type ObservedDeposit struct {
	DepositID     string
	TxID          string
	Amount        Amount
	Confirmations int
}

// ObserveDeposit records a payment. Seeing the same deposit again yields no
// events, unless a reorg had reverted it and it is back in a block: then it
// is detected again. A payment after the invoice ended is still credited (Late).
// Errors: ErrNotFound, ErrInvalidAmount, ErrValidation.
func (inv *Invoice) ObserveDeposit(d ObservedDeposit, now time.Time) ([]Event, error) {
	if !inv.exists {
		return nil, fmt.Errorf("invoice: %w", ErrNotFound)
	}
	if d.DepositID == "" {
		return nil, fmt.Errorf("%w: deposit without id", ErrValidation)
	}
	if prev, seen := inv.deposits[d.DepositID]; seen && !prev.reverted {
		return nil, nil
	}
	if !d.Amount.IsPositive() {
		return nil, fmt.Errorf("%w: deposit amount must be positive", ErrInvalidAmount)
	}
	if _, err := d.Amount.BaseUnits(inv.created.Decimals); err != nil {
		return nil, err
	}
	m := inv.MerchantID()
	ev := DepositDetected{
		InvoiceID: inv.ID(), MerchantID: m, DepositID: d.DepositID, TxID: d.TxID, Asset: inv.asset(),
		Amount: d.Amount, Confirmations: d.Confirmations, Late: inv.status.Terminal(), DetectedAt: now.UTC(),
		Postings: mustBalance([]Posting{
			{Account: ExternalAccount, Asset: inv.asset(), Amount: d.Amount.Neg()},
			{Account: PendingAccount(m), Asset: inv.asset(), Amount: d.Amount},
		}),
	}
	return inv.settle([]Event{ev}, now), nil
}

// ConfirmDeposit credits a deposit once it has the required confirmations:
// pending moves to available minus the fee at the invoice's tier.
// Errors: ErrNotFound, ErrInvalidState (reverted, or too few confirmations).
func (inv *Invoice) ConfirmDeposit(depositID string, confirmations int, now time.Time) ([]Event, error) {
	d, ok := inv.deposits[depositID]
	if !ok {
		return nil, fmt.Errorf("deposit %s: %w", depositID, ErrNotFound)
	}
	if d.confirmed {
		return nil, nil
	}
	if d.reverted {
		return nil, fmt.Errorf("%w: deposit %s was reverted", ErrInvalidState, depositID)
	}
	if confirmations < inv.created.RequiredConfirmations {
		return nil, fmt.Errorf("%w: %d of %d confirmations", ErrInvalidState, confirmations, inv.created.RequiredConfirmations)
	}
	m, a := inv.MerchantID(), inv.asset()
	fee := ComputeFee(d.amount, inv.feeBps(), inv.created.Decimals)
	net := d.amount.Sub(fee.Fee)
	ev := DepositConfirmed{
		InvoiceID: inv.ID(), MerchantID: m, DepositID: depositID, Asset: a, Amount: d.amount,
		Confirmations: confirmations, Fee: fee, Net: net, ConfirmedAt: now.UTC(),
		Postings: mustBalance([]Posting{
			{Account: PendingAccount(m), Asset: a, Amount: d.amount.Neg()},
			{Account: AvailableAccount(m), Asset: a, Amount: net},
			{Account: FeeAccount, Asset: a, Amount: fee.Fee},
		}),
	}
	return inv.settle([]Event{ev}, now), nil
}

// RevertDeposit undoes a deposit that a reorg removed, reversing exactly the
// postings it had made. A paid invoice stays paid (its funds were confirmed
// at the required depth); the balance shows the reversal.
// Errors: ErrNotFound.
func (inv *Invoice) RevertDeposit(depositID, reason string, now time.Time) ([]Event, error) {
	d, ok := inv.deposits[depositID]
	if !ok {
		return nil, fmt.Errorf("deposit %s: %w", depositID, ErrNotFound)
	}
	if d.reverted {
		return nil, nil
	}
	m, a := inv.MerchantID(), inv.asset()
	postings := []Posting{{Account: ExternalAccount, Asset: a, Amount: d.amount}}
	if d.confirmed {
		postings = append(postings,
			Posting{Account: AvailableAccount(m), Asset: a, Amount: d.amount.Sub(d.fee).Neg()},
			Posting{Account: FeeAccount, Asset: a, Amount: d.fee.Neg()})
	} else {
		postings = append(postings, Posting{Account: PendingAccount(m), Asset: a, Amount: d.amount.Neg()})
	}
	ev := DepositReverted{InvoiceID: inv.ID(), MerchantID: m, DepositID: depositID, Asset: a, Amount: d.amount,
		Reason: reason, RevertedAt: now.UTC(), Postings: mustBalance(postings)}
	return inv.settle([]Event{ev}, now), nil
}

// Expire closes an invoice whose window has passed without enough payment.
// A confirming invoice is not expired: the customer paid in time.
// Errors: ErrNotFound, ErrInvalidState (not yet due, or paid or confirming).
func (inv *Invoice) Expire(now time.Time) ([]Event, error) {
	if !inv.exists {
		return nil, fmt.Errorf("invoice: %w", ErrNotFound)
	}
	switch {
	case inv.status == StatusExpired:
		return nil, nil
	case inv.status != StatusNew && inv.status != StatusPartiallyPaid:
		return nil, fmt.Errorf("%w: invoice is %s", ErrInvalidState, inv.status)
	case now.Before(inv.ExpiresAt()):
		return nil, fmt.Errorf("%w: invoice expires at %s", ErrInvalidState, inv.ExpiresAt().Format(time.RFC3339))
	}
	received, _ := inv.totals()
	return []Event{InvoiceStatusChanged{InvoiceID: inv.ID(), MerchantID: inv.MerchantID(), From: inv.status, To: StatusExpired,
		AmountReceived: received, At: now.UTC()}}, nil
}

// UniquePayAmount returns the smallest amount >= amount, stepping by the
// asset's smallest unit, that no open reservation on the address uses.
func UniquePayAmount(amount Amount, decimals int32, taken map[string]bool) Amount {
	step := FromBaseUnits(bigOne, decimals)
	p := amount
	for taken[p.String()] {
		p = p.Add(step)
	}
	return p
}
