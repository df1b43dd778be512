package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// PayoutKind says why money leaves: an instant payout of one confirmed
// payment, or a withdrawal the merchant asked for.
type PayoutKind string

const (
	PayoutKindInstant    PayoutKind = "instant"
	PayoutKindWithdrawal PayoutKind = "withdrawal"
)

// PayoutStatus is where a payout is. Signed is internal: the API shows a
// signed payout as requested until its broadcast is accepted.
type PayoutStatus string

const (
	PayoutRequestedStatus PayoutStatus = "requested"
	PayoutSignedStatus    PayoutStatus = "signed"
	PayoutSentStatus      PayoutStatus = "sent"
	PayoutConfirmedStatus PayoutStatus = "confirmed"
	PayoutFailedStatus    PayoutStatus = "failed"
)

// PayoutRequested reserves the amount: it leaves the merchant's available
// balance for the reserved account. It is appended to the merchant's funds
// stream for the asset (payouts-<merchant>-<asset>) with the expected
// version, which is what makes two concurrent withdrawals of the same funds
// impossible; the payout's later events live in payout-<id>.
//
// Credited and DebitedBefore are the inputs of the decision: what the
// merchant had been credited (a lower bound read from the balances read
// model) and what the funds stream had already taken.
type PayoutRequested struct {
	PayoutID        string     `json:"payout_id"`
	MerchantID      string     `json:"merchant_id"`
	CommandID       string     `json:"command_id"`
	Asset           string     `json:"asset"`
	Chain           Chain      `json:"chain"`
	Decimals        int32      `json:"decimals"`
	Amount          Amount     `json:"amount"` // before the network fee
	ToAddress       string     `json:"to_address"`
	Kind            PayoutKind `json:"kind"`
	SourceInvoiceID string     `json:"source_invoice_id,omitempty"`
	SourceDepositID string     `json:"source_deposit_id,omitempty"`
	Credited        Amount     `json:"credited"`
	DebitedBefore   Amount     `json:"debited_before"`
	RequestedAt     time.Time  `json:"requested_at"`
	Postings        []Posting  `json:"postings"`
}

// PayoutSigned records the signed transaction before it is broadcast, so a
// restart rebroadcasts the same transaction instead of building another.
type PayoutSigned struct {
	PayoutID   string `json:"payout_id"`
	MerchantID string `json:"merchant_id"`
	Asset      string `json:"asset"`
	TxID       string `json:"txid"`
	// Raw is the signed transaction as the chain's sender encodes it (hex).
	Raw string `json:"raw"`
	// Nonce (Ethereum) or Inputs (Bitcoin outpoints) are what the
	// transaction spends, recorded so that nothing else spends them.
	Nonce      *uint64   `json:"nonce,omitempty"`
	Inputs     []string  `json:"inputs,omitempty"`
	NetworkFee Amount    `json:"network_fee"` // in the payout's asset
	Sent       Amount    `json:"sent"`        // amount − network fee: what the recipient gets
	SignedAt   time.Time `json:"signed_at"`
}

// PayoutSent records that a node accepted the broadcast.
type PayoutSent struct {
	PayoutID   string    `json:"payout_id"`
	MerchantID string    `json:"merchant_id"`
	TxID       string    `json:"txid"`
	SentAt     time.Time `json:"sent_at"`
}

// PayoutConfirmed settles a payout: the reservation goes out to the chain,
// split into what the recipient got and what the network took.
type PayoutConfirmed struct {
	PayoutID        string    `json:"payout_id"`
	MerchantID      string    `json:"merchant_id"`
	Asset           string    `json:"asset"`
	TxID            string    `json:"txid"`
	Amount          Amount    `json:"amount"`
	NetworkFee      Amount    `json:"network_fee"`
	Sent            Amount    `json:"sent"`
	NetOfNetworkFee bool      `json:"net_of_network_fee"` // always false: the fee is deducted from Amount
	Confirmations   int       `json:"confirmations"`
	ConfirmedAt     time.Time `json:"confirmed_at"`
	Postings        []Posting `json:"postings"`
}

// PayoutFailed releases the reservation back to the available balance.
type PayoutFailed struct {
	PayoutID   string    `json:"payout_id"`
	MerchantID string    `json:"merchant_id"`
	Asset      string    `json:"asset"`
	Amount     Amount    `json:"amount"`
	Reason     string    `json:"reason"`
	FailedAt   time.Time `json:"failed_at"`
	Postings   []Posting `json:"postings"`
}

func (PayoutRequested) EventType() string { return TypePayoutRequested }
func (PayoutSigned) EventType() string    { return TypePayoutSigned }
func (PayoutSent) EventType() string      { return TypePayoutSent }
func (PayoutConfirmed) EventType() string { return TypePayoutConfirmed }
func (PayoutFailed) EventType() string    { return TypePayoutFailed }

func (e PayoutRequested) LedgerPostings() []Posting { return e.Postings }
func (e PayoutConfirmed) LedgerPostings() []Posting { return e.Postings }
func (e PayoutFailed) LedgerPostings() []Posting    { return e.Postings }

// Funds is the aggregate behind a payouts-<merchant>-<asset> stream: every
// debit of the merchant's available balance in that asset that the
// merchant decides (payout requests and conversions out of the asset). The
// stream is appended with the expected version, so its decisions are
// serialised: a debit is allowed only if credited − everything the stream
// already debited covers it.
//
// Credits (confirmed deposits, released payouts, conversions into the
// asset) are not in the stream: the caller reads them from the balances
// read model, which lags the log and so can only under-estimate them. The
// one credit-side debit outside the stream is a reorg reverting a confirmed
// deposit; a lagging read model can over-estimate by that until it catches up.
type Funds struct {
	debited Amount
}

// Apply folds an event of the funds stream.
func (f *Funds) Apply(e Event) {
	switch e := e.(type) {
	case PayoutRequested:
		f.debited = f.debited.Add(e.Amount)
	case ConversionExecuted:
		f.debited = f.debited.Add(e.FromAmount)
	}
}

// Clone returns a copy that a decision may use without touching f.
func (f *Funds) Clone() *Funds { c := *f; return &c }

// Debited is the sum of every debit the stream recorded.
func (f *Funds) Debited() Amount { return f.debited }

// Balance is credited less every debit: the available balance, negative
// while a reversal's debt is open (money rule 6).
func (f *Funds) Balance(credited Amount) Amount { return credited.Sub(f.debited) }

// Available is what the merchant may still debit given credited.
func (f *Funds) Available(credited Amount) Amount {
	a := credited.Sub(f.debited)
	if a.IsNegative() {
		return Amount{}
	}
	return a
}

// debitAmount picks the amount of a debit: want, or all that is available
// when want is nil. Errors: ErrInsufficientFunds, ErrInvalidAmount.
func (f *Funds) debitAmount(want *Amount, credited Amount, decimals int32) (Amount, error) {
	avail := f.Available(credited)
	if bal := f.Balance(credited); bal.IsNegative() {
		// Money rule 6: say so, rather than "0 available".
		return Amount{}, fmt.Errorf("%w: available is %s, a debt left by a reversal; later payments repay it first", ErrInsufficientFunds, bal)
	}
	if want == nil {
		if !avail.IsPositive() {
			return Amount{}, fmt.Errorf("%w: nothing is available", ErrInsufficientFunds)
		}
		return avail, nil
	}
	if !want.IsPositive() {
		return Amount{}, fmt.Errorf("%w: amount must be greater than 0", ErrInvalidAmount)
	}
	if _, err := want.BaseUnits(decimals); err != nil {
		return Amount{}, err
	}
	if want.Cmp(avail) > 0 {
		return Amount{}, fmt.Errorf("%w: %s requested, %s available", ErrInsufficientFunds, want, avail)
	}
	return *want, nil
}

// PayoutRequest is what a payout needs, before the funds decide.
type PayoutRequest struct {
	PayoutID   string
	MerchantID string
	CommandID  string
	Asset      Asset
	// Amount nil: the whole available balance.
	Amount          *Amount
	ToAddress       string
	Kind            PayoutKind
	SourceInvoiceID string
	SourceDepositID string
	// AtMost pays out at most what is available when Amount is more: an
	// instant payout after a debt pays what is left once the debt is repaid.
	AtMost bool
}

const maxAddressLen = 128

// RequestPayout decides a payout against the funds. The address must
// already be checked for its chain (chain code validates; the domain only
// refuses the malformed). Errors: ErrInsufficientFunds, ErrInvalidAmount,
// ErrValidation.
func (f *Funds) RequestPayout(r PayoutRequest, credited Amount, now time.Time) (PayoutRequested, error) {
	if r.ToAddress == "" {
		return PayoutRequested{}, fmt.Errorf("%w: no to_address given and no payout_address configured for %s", ErrValidation, r.Asset.Code)
	}
	if len(r.ToAddress) > maxAddressLen || strings.IndexFunc(r.ToAddress, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }) >= 0 {
		return PayoutRequested{}, fmt.Errorf("%w: to_address is malformed", ErrValidation)
	}
	if r.Kind != PayoutKindInstant && r.Kind != PayoutKindWithdrawal {
		return PayoutRequested{}, fmt.Errorf("domain: payout kind %q", r.Kind)
	}
	if r.AtMost && r.Amount != nil {
		if avail := f.Available(credited); avail.LessThan(*r.Amount) {
			r.Amount = &avail
		}
	}
	amount, err := f.debitAmount(r.Amount, credited, r.Asset.Decimals)
	if err != nil {
		return PayoutRequested{}, err
	}
	return PayoutRequested{
		PayoutID: r.PayoutID, MerchantID: r.MerchantID, CommandID: r.CommandID, Asset: r.Asset.Code, Chain: r.Asset.Chain,
		Decimals: r.Asset.Decimals, Amount: amount, ToAddress: r.ToAddress, Kind: r.Kind,
		SourceInvoiceID: r.SourceInvoiceID, SourceDepositID: r.SourceDepositID,
		Credited: credited, DebitedBefore: f.debited, RequestedAt: now.UTC(),
		Postings: mustBalance([]Posting{
			{Account: AvailableAccount(r.MerchantID), Asset: r.Asset.Code, Amount: amount.Neg()},
			{Account: ReservedAccount(r.MerchantID), Asset: r.Asset.Code, Amount: amount},
		}),
	}, nil
}

// Payout is the aggregate of one payout: its PayoutRequested (from the
// funds stream) followed by the events of its payout-<id> stream.
type Payout struct {
	req    PayoutRequested
	exists bool
	status PayoutStatus
	signed PayoutSigned
}

// Apply folds a payout's events.
func (p *Payout) Apply(e Event) {
	switch e := e.(type) {
	case PayoutRequested:
		*p = Payout{req: e, exists: true, status: PayoutRequestedStatus}
	case PayoutSigned:
		p.status, p.signed = PayoutSignedStatus, e
	case PayoutSent:
		p.status = PayoutSentStatus
	case PayoutConfirmed:
		p.status = PayoutConfirmedStatus
	case PayoutFailed:
		p.status = PayoutFailedStatus
	}
}

func (p *Payout) Request() PayoutRequested { return p.req }
func (p *Payout) Status() PayoutStatus     { return p.status }
func (p *Payout) Signed() PayoutSigned     { return p.signed }
func (p *Payout) IsSigned() bool           { return p.signed.TxID != "" }
func (p *Payout) Terminal() bool {
	return p.status == PayoutConfirmedStatus || p.status == PayoutFailedStatus
}
func (p *Payout) mustExist() error {
	if !p.exists {
		return fmt.Errorf("payout: %w", ErrNotFound)
	}
	return nil
}

// SignedTx is a transaction a chain sender built and signed for a payout.
type SignedTx struct {
	TxID       string
	Raw        string
	Nonce      *uint64
	Inputs     []string
	NetworkFee Amount // in the payout's asset
}

// Sign records the signed transaction. A payout is signed once: the same
// txid again is a no-op, another one is ErrInvalidState (it could spend
// twice). Errors: ErrNotFound, ErrInvalidState, ErrValidation, ErrInvalidAmount.
func (p *Payout) Sign(tx SignedTx, now time.Time) ([]Event, error) {
	if err := p.mustExist(); err != nil {
		return nil, err
	}
	if p.IsSigned() {
		if p.signed.TxID == tx.TxID {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: payout %s is already signed as %s", ErrInvalidState, p.req.PayoutID, p.signed.TxID)
	}
	if p.status != PayoutRequestedStatus {
		return nil, fmt.Errorf("%w: payout %s is %s", ErrInvalidState, p.req.PayoutID, p.status)
	}
	if tx.TxID == "" || tx.Raw == "" {
		return nil, fmt.Errorf("%w: a signed transaction needs a txid and its raw bytes", ErrValidation)
	}
	if tx.NetworkFee.IsNegative() {
		return nil, fmt.Errorf("%w: negative network fee", ErrInvalidAmount)
	}
	if _, err := tx.NetworkFee.BaseUnits(p.req.Decimals); err != nil {
		return nil, err
	}
	if tx.NetworkFee.Cmp(p.req.Amount) >= 0 {
		return nil, fmt.Errorf("%w: network fee %s is not below the payout's %s", ErrInvalidAmount, tx.NetworkFee, p.req.Amount)
	}
	return []Event{PayoutSigned{PayoutID: p.req.PayoutID, MerchantID: p.req.MerchantID, Asset: p.req.Asset, TxID: tx.TxID, Raw: tx.Raw,
		Nonce: tx.Nonce, Inputs: tx.Inputs, NetworkFee: tx.NetworkFee, Sent: p.req.Amount.Sub(tx.NetworkFee), SignedAt: now.UTC()}}, nil
}

// MarkSent records an accepted broadcast. Errors: ErrNotFound, ErrInvalidState.
func (p *Payout) MarkSent(now time.Time) ([]Event, error) {
	if err := p.mustExist(); err != nil {
		return nil, err
	}
	switch p.status {
	case PayoutSentStatus, PayoutConfirmedStatus:
		return nil, nil
	case PayoutSignedStatus:
		return []Event{PayoutSent{PayoutID: p.req.PayoutID, MerchantID: p.req.MerchantID, TxID: p.signed.TxID, SentAt: now.UTC()}}, nil
	}
	return nil, fmt.Errorf("%w: payout %s is %s", ErrInvalidState, p.req.PayoutID, p.status)
}

// Confirm settles a payout whose transaction has required confirmations.
// A signed payout may confirm without PayoutSent (the broadcast was
// accepted just before a restart). Errors: ErrNotFound, ErrInvalidState.
func (p *Payout) Confirm(confirmations, required int, now time.Time) ([]Event, error) {
	if err := p.mustExist(); err != nil {
		return nil, err
	}
	switch p.status {
	case PayoutConfirmedStatus:
		return nil, nil
	case PayoutSentStatus, PayoutSignedStatus:
	default:
		return nil, fmt.Errorf("%w: payout %s is %s", ErrInvalidState, p.req.PayoutID, p.status)
	}
	if confirmations < required {
		return nil, fmt.Errorf("%w: %d of %d confirmations", ErrInvalidState, confirmations, required)
	}
	r, s := p.req, p.signed
	return []Event{PayoutConfirmed{PayoutID: r.PayoutID, MerchantID: r.MerchantID, Asset: r.Asset, TxID: s.TxID, Amount: r.Amount,
		NetworkFee: s.NetworkFee, Sent: s.Sent, Confirmations: confirmations, ConfirmedAt: now.UTC(),
		Postings: mustBalance(confirmPostings(r, s))}}, nil
}

func confirmPostings(r PayoutRequested, s PayoutSigned) []Posting {
	ps := []Posting{
		{Account: ReservedAccount(r.MerchantID), Asset: r.Asset, Amount: r.Amount.Neg()},
		{Account: ExternalAccount, Asset: r.Asset, Amount: s.Sent},
	}
	if !s.NetworkFee.IsZero() {
		ps = append(ps, Posting{Account: NetworkFeeAccount, Asset: r.Asset, Amount: s.NetworkFee})
	}
	return ps
}

// Fail ends a payout whose transaction can never confirm and releases its
// reservation: one never sent, or a sent one that its sender proves dead
// (reverted on chain, expired unmined). Nothing reached the recipient, so
// the merchant gets the whole amount back; a network fee burned by a
// failed transaction is the hot wallet's loss, not the merchant's.
// Errors: ErrNotFound, ErrInvalidState.
func (p *Payout) Fail(reason string, now time.Time) ([]Event, error) {
	if err := p.mustExist(); err != nil {
		return nil, err
	}
	switch p.status {
	case PayoutFailedStatus:
		return nil, nil
	case PayoutRequestedStatus, PayoutSignedStatus, PayoutSentStatus:
	default:
		return nil, fmt.Errorf("%w: payout %s is %s", ErrInvalidState, p.req.PayoutID, p.status)
	}
	r := p.req
	return []Event{PayoutFailed{PayoutID: r.PayoutID, MerchantID: r.MerchantID, Asset: r.Asset, Amount: r.Amount, Reason: reason, FailedAt: now.UTC(),
		Postings: mustBalance([]Posting{
			{Account: ReservedAccount(r.MerchantID), Asset: r.Asset, Amount: r.Amount.Neg()},
			{Account: AvailableAccount(r.MerchantID), Asset: r.Asset, Amount: r.Amount},
		})}}, nil
}

// Tx is the recorded transaction, as the sender built it.
func (e PayoutSigned) Tx() SignedTx {
	return SignedTx{TxID: e.TxID, Raw: e.Raw, Nonce: e.Nonce, Inputs: e.Inputs, NetworkFee: e.NetworkFee}
}
