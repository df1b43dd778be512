package domain

import (
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Status of an invoice.
type Status string

// AddressInvoice is an invoice that uses an address, as the chain watchers
// see it when they match a payment to an invoice.
type AddressInvoice struct {
	ID        string
	Asset     string
	PayAmount Amount
	Status    Status
}

const (
	StatusNew           Status = "new"
	StatusPartiallyPaid Status = "partially_paid"
	StatusConfirming    Status = "confirming"
	StatusPaid          Status = "paid"
	StatusExpired       Status = "expired"
	// StatusReverted: was paid, and a reorganisation took the payment away
	// (money rule 5). Paid again if the payment is mined again.
	StatusReverted Status = "reverted"
)

// Terminal reports whether no payment can change the status any more.
func (s Status) Terminal() bool { return s == StatusPaid || s == StatusExpired }

// ParseStatus accepts the API's status names. Errors: ErrValidation.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusNew, StatusPartiallyPaid, StatusConfirming, StatusPaid, StatusExpired, StatusReverted:
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

// CreatedBy is the kind of API key that created an invoice. The
// publishable key is public by design (it sits in a shop's web pages), so
// what it creates must never pass for what the merchant's server created
// with the secret key (API.md, additions of 2026-12-03).
type CreatedBy string

const (
	// CreatedBySecretKey: the secret key, or a dashboard session (which
	// signs in with it).
	CreatedBySecretKey      CreatedBy = "secret_key"
	CreatedByPublishableKey CreatedBy = "publishable_key"
)

// Creator is the kind of key that created the invoice; an event from
// before created_by was recorded reads as the secret key's.
func (e InvoiceCreated) Creator() CreatedBy {
	if e.CreatedBy == "" {
		return CreatedBySecretKey
	}
	return e.CreatedBy
}

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
	// ConsolidateTo is the account's setting at creation: with it (and no
	// settle_as) the invoice expects the conversion tier.
	ConsolidateTo string
	OrderID       string
	ExpiresIn     time.Duration
	// CreatedBy is the kind of key of the request; "" is the secret key.
	CreatedBy CreatedBy
	// Description, Metadata and RedirectURL are the merchant's own
	// details (validateDetails); Price is set when the invoice was priced
	// in fiat.
	Description string
	Metadata    map[string]string
	RedirectURL string
	Price       *InvoicePrice
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
			return InvoiceCreated{}, fmt.Errorf("%w: settle_as must name another asset than %s", ErrValidation, n.Asset.Code)
		}
	}
	convertTo := n.SettleAsset
	if convertTo == "" && n.ConsolidateTo != n.Asset.Code {
		convertTo = n.ConsolidateTo
	}
	if err := ValidateText("order_id", n.OrderID, maxOrderIDLen); err != nil {
		return InvoiceCreated{}, err
	}
	if err := n.validateDetails(); err != nil {
		return InvoiceCreated{}, err
	}
	if p := n.Price; p != nil {
		// The caller computed Amount from the price; a mismatch is a bug.
		if want, err := FiatToAsset(p.Amount, p.Rate, n.Asset.Decimals); err != nil || !want.Equal(n.Amount) || p.Currency == "" {
			return InvoiceCreated{}, fmt.Errorf("domain: amount %s does not follow from the price %s %s at %s", n.Amount, p.Amount, p.Currency, p.Rate)
		}
	}
	if len(n.Metadata) == 0 {
		n.Metadata = nil // one form for "none" in the log
	}
	switch n.CreatedBy {
	case "":
		n.CreatedBy = CreatedBySecretKey
	case CreatedBySecretKey, CreatedByPublishableKey:
	default: // the caller's bug, not the client's input
		return InvoiceCreated{}, fmt.Errorf("domain: invoice created by unknown key kind %q", n.CreatedBy)
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
		RequiredConfirmations: n.Asset.Confirmations, Finality: n.Asset.FinalityDepth(), SettleAsset: n.SettleAsset, ConvertTo: convertTo,
		OrderID:   n.OrderID,
		Fee:       ComputeFee(n.Amount, TierBps(convertTo != ""), n.Asset.Decimals),
		CreatedAt: now, ExpiresAt: now.Add(n.ExpiresIn), CreatedBy: n.CreatedBy,
		Description: n.Description, Metadata: n.Metadata, RedirectURL: n.RedirectURL, Price: n.Price,
	}, nil
}

// ValidateText checks an identifier or a piece of free text that people
// will read (order_id, a merchant's name): valid UTF-8 of at most maxChars
// characters, each a letter, mark, digit, punctuation, symbol or the space
// U+0020 (unicode.IsPrint). It refuses what would make the text read other
// than it is: control characters, format characters (the bidirectional
// controls U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C, zero-width
// characters, U+FEFF), other spaces and separators, private-use and
// unassigned code points, invalid UTF-8, and U+FFFD, which JSON decoding
// puts in place of invalid UTF-8. "" is valid (a field left out); whether
// a field is required is its caller's rule. The message names the field
// and the offending code point, never echoes it. Errors: ErrValidation.
func ValidateText(field, s string, maxChars int) error {
	allowed := fmt.Sprintf("%s must be at most %d characters: letters, digits, punctuation, symbols and spaces", field, maxChars)
	if n := utf8.RuneCountInString(s); n > maxChars {
		return fmt.Errorf("%w: %s; it has %d", ErrValidation, allowed, n)
	}
	for i, r := range s {
		pos := utf8.RuneCountInString(s[:i]) + 1
		switch {
		case r == utf8.RuneError:
			return fmt.Errorf("%w: %s; character %d is invalid UTF-8 or U+FFFD (which stands for it)", ErrValidation, allowed, pos)
		case !unicode.IsPrint(r):
			return fmt.Errorf("%w: %s; character %d is U+%04X, a control, format, bidirectional or invisible character", ErrValidation, allowed, pos, r)
		}
	}
	return nil
}

type deposit struct {
	id            string
	amount        Amount
	confirmations int
	confirmed     bool
	final         bool
	reverted      bool
	detections    int // times seen: a reorganised payment mined again is seen anew
	// charged is this deposit's share of the invoice's fee: what its
	// confirmation charged, moved by later reversals and tier changes so
	// that the shares of credited deposits always sum to the invoice's fee.
	charged Amount
}

// net is what the deposit put in the merchant's pending, then available.
func (d *deposit) net() Amount { return d.amount.Sub(d.charged) }

// Invoice is the aggregate behind an invoice-<id> stream.
type Invoice struct {
	created  InvoiceCreated
	exists   bool
	status   Status
	deposits map[string]*deposit
	order    []string
	// The fee tier and conversion target are fixed by the first credited
	// deposit (money rule 2); unconverted drops the tier to 25 bps.
	tierFixed   bool
	feeBps      int64
	convertTo   string
	unconverted bool
	waiting     map[string]bool // deposits whose conversion waits for a price
}

// Apply folds an event of the invoice's stream into its state.
func (inv *Invoice) Apply(e Event) {
	switch e := e.(type) {
	case InvoiceCreated:
		*inv = Invoice{created: e, exists: true, status: StatusNew, deposits: map[string]*deposit{}, feeBps: e.Fee.Bps,
			convertTo: e.ConvertTo, waiting: map[string]bool{}}
	case DepositDetected:
		prev, again := inv.deposits[e.DepositID]
		n := 1
		if again {
			n = prev.detections + 1
		} else {
			inv.order = append(inv.order, e.DepositID)
		}
		inv.deposits[e.DepositID] = &deposit{id: e.DepositID, amount: e.Amount, confirmations: e.Confirmations, detections: n}
	case DepositConfirmed:
		d := inv.deposits[e.DepositID]
		d.confirmed, d.confirmations, d.charged = true, e.Confirmations, e.Charged
		inv.tierFixed, inv.feeBps, inv.convertTo = true, e.Fee.Bps, e.ConvertTo
		if e.Legacy() { // its own fee, and available at once
			d.charged, d.final = e.Fee.Fee, true
		}
	case DepositFinalized:
		inv.deposits[e.DepositID].final = true
	case DepositReverted:
		d := inv.deposits[e.DepositID]
		d.reverted = true
		if e.ShiftTo != "" {
			s := inv.deposits[e.ShiftTo]
			s.charged = s.charged.Add(e.ShiftAmount)
		}
	case ConversionWaiting:
		inv.waiting[e.DepositID] = true
	case PaymentConverted:
		delete(inv.waiting, e.DepositID)
	case ConversionAbandoned:
		delete(inv.waiting, e.DepositID)
		inv.unconverted, inv.feeBps, inv.convertTo = true, e.Fee.Bps, ""
		for id, back := range e.Refunds {
			o := inv.deposits[id]
			o.charged = o.charged.Sub(back)
		}
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
func (inv *Invoice) asset() string           { return inv.created.Asset }
func (inv *Invoice) AmountReceived() Amount  { r, _ := inv.totals(); return r }

// ConvertTo is the asset the invoice's payments are converted into ("" for
// none), as fixed by its first credit; Unconverted reports that a
// conversion was given up (money rule 3) and payments stay in their coin.
func (inv *Invoice) ConvertTo() string { return inv.convertTo }
func (inv *Invoice) Unconverted() bool { return inv.unconverted }
func (inv *Invoice) FeeBps() int64     { return inv.feeBps }
func (inv *Invoice) Charged() Amount {
	return inv.sumCredited(func(d *deposit) Amount { return d.charged })
}
func (inv *Invoice) credited() Amount {
	return inv.sumCredited(func(d *deposit) Amount { return d.amount })
}
func (inv *Invoice) Waiting(id string) bool { return inv.waiting[id] }

// StillFinal reports whether finalization round of the deposit is its
// current state: final, not reverted since, nor seen again after a reorg.
// A settlement of an older round must not move money again.
func (inv *Invoice) StillFinal(depositID string, round int) bool {
	d, ok := inv.deposits[depositID]
	return ok && d.final && !d.reverted && d.detections == round
}

// DepositNet is what a credited deposit left the merchant (its amount less
// its share of the fee). Errors: ErrNotFound, ErrInvalidState (not credited).
func (inv *Invoice) DepositNet(depositID string) (Amount, error) {
	d, ok := inv.deposits[depositID]
	if !ok {
		return Amount{}, fmt.Errorf("deposit %s: %w", depositID, ErrNotFound)
	}
	if !d.confirmed || d.reverted {
		return Amount{}, fmt.Errorf("%w: deposit %s is not credited", ErrInvalidState, depositID)
	}
	return d.net(), nil
}

func (inv *Invoice) sumCredited(f func(*deposit) Amount) Amount {
	var sum Amount
	for _, id := range inv.order {
		if d := inv.deposits[id]; d.confirmed && !d.reverted {
			sum = sum.Add(f(d))
		}
	}
	return sum
}

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

// statusFor is the status the payments justify. Expired stays expired; a
// paid invoice that no longer holds its amount is reverted, and paid again
// when it does (money rule 5).
func (inv *Invoice) statusFor(received, confirmed Amount) Status {
	target := inv.created.PayAmount
	switch inv.status {
	case StatusExpired:
		return StatusExpired
	case StatusPaid, StatusReverted:
		if confirmed.Cmp(target) >= 0 {
			return StatusPaid
		}
		return StatusReverted
	}
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
	c.waiting = make(map[string]bool, len(inv.waiting))
	for k, v := range inv.waiting {
		c.waiting[k] = v
	}
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

// ConfirmDeposit credits a deposit once it has the required confirmations
// (money rule 1): the invoice's fee becomes that of everything credited,
// and this deposit is charged the difference, out of pending. The first
// credit fixes the tier: 50 bps when the payment will be converted (the
// invoice's settle_as, else consolidateTo, the account's setting now).
// Errors: ErrNotFound, ErrInvalidState (reverted, or too few confirmations).
func (inv *Invoice) ConfirmDeposit(depositID string, confirmations int, consolidateTo string, now time.Time) ([]Event, error) {
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
	bps, convertTo := inv.feeBps, inv.convertTo
	if !inv.tierFixed && !inv.unconverted {
		convertTo = inv.created.SettleAsset
		if convertTo == "" && consolidateTo != inv.asset() {
			convertTo = consolidateTo
		}
		bps = TierBps(convertTo != "")
	}
	m, a := inv.MerchantID(), inv.asset()
	before := inv.Charged()
	fee := ComputeFee(inv.credited().Add(d.amount), bps, inv.created.Decimals)
	charged := fee.Fee.Sub(before)
	ev := DepositConfirmed{
		InvoiceID: inv.ID(), MerchantID: m, DepositID: depositID, Asset: a, Amount: d.amount,
		Confirmations: confirmations, Fee: fee, FeeBefore: before, Charged: charged, Net: d.amount.Sub(charged),
		ConvertTo: convertTo, ConfirmedAt: now.UTC(),
		Postings: mustBalance(nonZero([]Posting{
			{Account: PendingAccount(m), Asset: a, Amount: charged.Neg()},
			{Account: FeeAccount, Asset: a, Amount: charged},
		})),
	}
	return inv.settle([]Event{ev}, now), nil
}

// FinalizeDeposit makes a credited deposit spendable once its block is
// final (money rule 4): its net moves from pending to available.
// Errors: ErrNotFound, ErrInvalidState (not credited, or reverted).
func (inv *Invoice) FinalizeDeposit(depositID string, depth int, now time.Time) ([]Event, error) {
	d, ok := inv.deposits[depositID]
	if !ok {
		return nil, fmt.Errorf("deposit %s: %w", depositID, ErrNotFound)
	}
	if d.final && !d.reverted {
		return nil, nil
	}
	if !d.confirmed || d.reverted {
		return nil, fmt.Errorf("%w: deposit %s is not credited", ErrInvalidState, depositID)
	}
	// Finality is the chain's word (a depth, Ethereum's finalized block,
	// TRON's solidified one); the domain only refuses what is not credited.
	if depth < inv.created.RequiredConfirmations {
		return nil, fmt.Errorf("%w: %d blocks, below the %d confirmations", ErrInvalidState, depth, inv.created.RequiredConfirmations)
	}
	m, a := inv.MerchantID(), inv.asset()
	return []Event{DepositFinalized{InvoiceID: inv.ID(), MerchantID: m, DepositID: depositID, Asset: a, Net: d.net(), Depth: depth, Round: d.detections,
		FinalizedAt: now.UTC(), Postings: mustBalance(nonZero([]Posting{
			{Account: PendingAccount(m), Asset: a, Amount: d.net().Neg()},
			{Account: AvailableAccount(m), Asset: a, Amount: d.net()},
		}))}}, nil
}

// RevertDeposit undoes a deposit that a reorg removed (money rule 5): the
// coins go back out, and a credited deposit gives back the difference it
// made to the invoice's fee. Its net leaves the account it is in (pending,
// or available once final, which may then go negative: rule 6). The
// invoice's status follows, backwards too.
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
	ev := DepositReverted{InvoiceID: inv.ID(), MerchantID: m, DepositID: depositID, Asset: a, Amount: d.amount,
		Reason: reason, RevertedAt: now.UTC()}
	postings := []Posting{{Account: ExternalAccount, Asset: a, Amount: d.amount}}
	if !d.confirmed {
		postings = append(postings, Posting{Account: PendingAccount(m), Asset: a, Amount: d.amount.Neg()})
	} else {
		account := PendingAccount(m)
		if d.final {
			account = AvailableAccount(m)
		}
		before := inv.Charged()
		rest := inv.credited().Sub(d.amount)
		fee := ComputeFee(rest, inv.feeBps, inv.created.Decimals)
		refund := before.Sub(fee.Fee)
		ev.Fee, ev.Refund = &fee, refund
		postings = append(postings,
			Posting{Account: account, Asset: a, Amount: d.net().Neg()},
			Posting{Account: FeeAccount, Asset: a, Amount: refund.Neg()})
		// The fee the remaining deposits owe differs from their shares by
		// what this deposit's share was not refunded: one of them carries it.
		if shift := d.charged.Sub(refund); !shift.IsZero() {
			to := inv.shiftTarget(depositID)
			ev.ShiftTo, ev.ShiftAmount = to.id, shift
			toAccount := PendingAccount(m)
			if to.final {
				toAccount = AvailableAccount(m)
			}
			postings = append(postings, Posting{Account: toAccount, Asset: a, Amount: shift.Neg()})
		}
	}
	ev.Postings = mustBalance(nonZero(postings))
	return inv.settle([]Event{ev}, now), nil
}

// shiftTarget is the credited deposit (other than except) that carries a
// fee difference: the newest one not yet final, else the newest final one.
func (inv *Invoice) shiftTarget(except string) *deposit {
	var final *deposit
	for i := len(inv.order) - 1; i >= 0; i-- {
		d := inv.deposits[inv.order[i]]
		if d.id == except || !d.confirmed || d.reverted {
			continue
		}
		if !d.final {
			return d
		}
		if final == nil {
			final = d
		}
	}
	if final == nil {
		// Nothing else credited means the fee falls to 0 and the refund is
		// the whole share: no difference to carry.
		panic("domain: fee difference with no other credited deposit")
	}
	return final
}

// WaitForPrice records that a credited deposit's conversion waits for a
// price (money rule 3). Once per deposit.
func (inv *Invoice) WaitForPrice(depositID, reason string, now time.Time) ([]Event, error) {
	if _, err := inv.DepositNet(depositID); err != nil {
		return nil, err
	}
	if inv.waiting[depositID] || inv.convertTo == "" {
		return nil, nil
	}
	return []Event{ConversionWaiting{InvoiceID: inv.ID(), MerchantID: inv.MerchantID(), DepositID: depositID, Reason: reason,
		Since: now.UTC()}}, nil
}

// RecordConversion notes on the invoice that a payment was converted.
// Errors: ErrNotFound, ErrInvalidState.
func (inv *Invoice) RecordConversion(c ConversionExecuted, now time.Time) ([]Event, error) {
	if _, err := inv.DepositNet(c.DepositID); err != nil {
		return nil, err
	}
	return []Event{PaymentConverted{InvoiceID: inv.ID(), MerchantID: inv.MerchantID(), DepositID: c.DepositID,
		ConversionID: c.ConversionID, To: c.To, Credited: c.Net, At: now.UTC()}}, nil
}

// AbandonConversion gives up converting the invoice's payments after the
// longest wait for a price (money rule 3): they stay in their coin and the
// invoice drops to the 25 bps tier, so the difference the 50 bps tier
// charged on what it credited is returned, into the deposit's account.
// Errors: ErrNotFound, ErrInvalidState.
func (inv *Invoice) AbandonConversion(depositID, reason string, now time.Time) ([]Event, error) {
	d, ok := inv.deposits[depositID]
	if !ok {
		return nil, fmt.Errorf("deposit %s: %w", depositID, ErrNotFound)
	}
	if inv.unconverted {
		return nil, nil
	}
	if !d.confirmed || d.reverted {
		return nil, fmt.Errorf("%w: deposit %s is not credited", ErrInvalidState, depositID)
	}
	m, a := inv.MerchantID(), inv.asset()
	fee := ComputeFee(inv.credited(), FeeBps, inv.created.Decimals)
	// Each credited payment's share becomes its difference to the 25 bps fee
	// of what was credited up to it, and gets back what it paid over that,
	// into the account its net is in; so the shares still sum to the fee.
	var cum, before, pending, available Amount
	refunds := map[string]Amount{}
	for _, id := range inv.order {
		o := inv.deposits[id]
		if !o.confirmed || o.reverted {
			continue
		}
		cum = cum.Add(o.amount)
		after := ComputeFee(cum, FeeBps, inv.created.Decimals).Fee
		back := o.charged.Sub(after.Sub(before))
		before = after
		if back.IsZero() {
			continue
		}
		refunds[id] = back
		if o.final {
			available = available.Add(back)
		} else {
			pending = pending.Add(back)
		}
	}
	refund := pending.Add(available)
	return []Event{ConversionAbandoned{InvoiceID: inv.ID(), MerchantID: m, DepositID: depositID, Asset: a, Reason: reason,
		Fee: fee, Refund: refund, Refunds: refunds, At: now.UTC(), Postings: mustBalance(nonZero([]Posting{
			{Account: FeeAccount, Asset: a, Amount: refund.Neg()},
			{Account: PendingAccount(m), Asset: a, Amount: pending},
			{Account: AvailableAccount(m), Asset: a, Amount: available},
		}))}}, nil
}

// nonZero drops postings of zero: a fee that rounds to nothing moves nothing.
func nonZero(ps []Posting) []Posting {
	out := ps[:0]
	for _, p := range ps {
		if !p.Amount.IsZero() {
			out = append(out, p)
		}
	}
	return out
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
