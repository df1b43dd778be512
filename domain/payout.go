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
	// PayoutKindRefund sends an invoice's money back to its customer: the
	// customer receives exactly the amount, the network fee is the
	// merchant's on top (SourceInvoiceID is the invoice).
	PayoutKindRefund PayoutKind = "refund"
)

// ErrRefundExceeded: the refunds of an invoice would exceed what it
// received net of its fee (409).
var ErrRefundExceeded = fmt.Errorf("%w: refunds would exceed what the invoice received", ErrInvalidState)

// PayoutStatus is where a payout is. Signed is internal: the API shows a
// signed payout as requested until its broadcast is accepted.
type PayoutStatus string

const (
	PayoutRequestedStatus PayoutStatus = "requested"
	PayoutSignedStatus    PayoutStatus = "signed"
	PayoutSentStatus      PayoutStatus = "sent"
	PayoutConfirmedStatus PayoutStatus = "confirmed"
	PayoutFailedStatus    PayoutStatus = "failed"
	// PayoutCanceledStatus: the merchant canceled it before anything was
	// signed; its funds were released.
	PayoutCanceledStatus PayoutStatus = "canceled"
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
	Sent       Amount    `json:"sent"`        // amount − network fee: what the recipient gets; a refund's amount
	SignedAt   time.Time `json:"signed_at"`
	// FeeConverted: the network fee is the native coin the hot wallet
	// burns, converted into the payout's token (SignedTx.FeeConverted):
	// PayoutConfirmed posts it to NetworkFeeRevenueAccount, not to
	// NetworkFeeAccount.
	FeeConverted bool `json:"fee_converted,omitempty"`
	// Postings of a refund: its network fee, which the merchant pays on top
	// of the amount, moves from available to reserved once it is known.
	// Empty for the other kinds (their fee is deducted from the amount).
	Postings []Posting `json:"postings,omitempty"`
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
	PayoutID        string `json:"payout_id"`
	MerchantID      string `json:"merchant_id"`
	Asset           string `json:"asset"`
	TxID            string `json:"txid"`
	Amount          Amount `json:"amount"`
	NetworkFee      Amount `json:"network_fee"`
	Sent            Amount `json:"sent"`
	NetOfNetworkFee bool   `json:"net_of_network_fee"` // false: the fee is deducted from Amount; true for a refund: the fee was on top
	// Kind and InvoiceID are set on a refund's confirmation only (the
	// invoice.refunded webhook follows it); ToAddress is the customer's.
	Kind          PayoutKind `json:"kind,omitempty"`
	InvoiceID     string     `json:"invoice_id,omitempty"`
	ToAddress     string     `json:"to_address,omitempty"`
	Confirmations int        `json:"confirmations"`
	// FeeReturned is what the chain did not take of the network fee
	// recorded when signed (an Ethereum fee cap above what the receipt
	// says was paid): NetworkFee is then what was paid, and FeeReturned
	// goes back to the available balance. Nil when the signed fee was paid.
	FeeReturned *Amount   `json:"fee_returned,omitempty"`
	ConfirmedAt time.Time `json:"confirmed_at"`
	Postings    []Posting `json:"postings"`
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

// PayoutCanceled: the merchant canceled a payout before anything was
// signed (POST /v1/payouts/{id}/cancel); the reservation goes back to the
// available balance, as on a failure.
type PayoutCanceled struct {
	PayoutID   string    `json:"payout_id"`
	MerchantID string    `json:"merchant_id"`
	Asset      string    `json:"asset"`
	Amount     Amount    `json:"amount"`
	CanceledAt time.Time `json:"canceled_at"`
	Postings   []Posting `json:"postings"`
}

func (PayoutRequested) EventType() string { return TypePayoutRequested }
func (PayoutSigned) EventType() string    { return TypePayoutSigned }
func (PayoutSent) EventType() string      { return TypePayoutSent }
func (PayoutConfirmed) EventType() string { return TypePayoutConfirmed }
func (PayoutFailed) EventType() string    { return TypePayoutFailed }
func (PayoutCanceled) EventType() string  { return TypePayoutCanceled }

func (e PayoutRequested) LedgerPostings() []Posting { return e.Postings }
func (e PayoutSigned) LedgerPostings() []Posting    { return e.Postings }
func (e PayoutConfirmed) LedgerPostings() []Posting { return e.Postings }
func (e PayoutFailed) LedgerPostings() []Posting    { return e.Postings }
func (e PayoutCanceled) LedgerPostings() []Posting  { return e.Postings }

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
	refunds map[string][]PayoutRequested // by invoice id
}

// Apply folds an event of the funds stream.
func (f *Funds) Apply(e Event) {
	switch e := e.(type) {
	case PayoutRequested:
		f.debited = f.debited.Add(e.Amount)
		if e.Kind == PayoutKindRefund {
			if f.refunds == nil {
				f.refunds = map[string][]PayoutRequested{}
			}
			f.refunds[e.SourceInvoiceID] = append(f.refunds[e.SourceInvoiceID], e)
		}
	case ConversionExecuted:
		f.debited = f.debited.Add(e.FromAmount)
	}
}

// Clone returns a copy that a decision may use without touching f.
func (f *Funds) Clone() *Funds {
	c := *f
	c.refunds = make(map[string][]PayoutRequested, len(f.refunds))
	for k, v := range f.refunds {
		c.refunds[k] = append([]PayoutRequested(nil), v...)
	}
	return &c
}

// Refunds are the refund requests of an invoice that the stream recorded
// (failed ones too: their failure is in each payout's own stream).
func (f *Funds) Refunds(invoiceID string) []PayoutRequested {
	return append([]PayoutRequested(nil), f.refunds[invoiceID]...)
}

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
	if r.Kind != PayoutKindInstant && r.Kind != PayoutKindWithdrawal && r.Kind != PayoutKindRefund {
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
	case PayoutCanceled:
		p.status = PayoutCanceledStatus
	}
}

func (p *Payout) Request() PayoutRequested { return p.req }
func (p *Payout) Status() PayoutStatus     { return p.status }
func (p *Payout) Signed() PayoutSigned     { return p.signed }
func (p *Payout) IsSigned() bool           { return p.signed.TxID != "" }
func (p *Payout) Terminal() bool {
	return p.status == PayoutConfirmedStatus || p.status == PayoutFailedStatus || p.status == PayoutCanceledStatus
}

// Released reports whether a payout ended without paying: failed or
// canceled, its reservation back in the available balance.
func (p *Payout) Released() bool {
	return p.status == PayoutFailedStatus || p.status == PayoutCanceledStatus
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
	// FeeConverted: NetworkFee is the native coin the transaction burns
	// from the hot wallet, converted into the payout's token (a TRON token
	// payout priced through the oracle). The network takes none of the
	// token: at confirmation the fee is the operator's revenue
	// (NetworkFeeRevenueAccount), and the coin burned its cost.
	FeeConverted bool
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
	r := p.req
	if r.Kind == PayoutKindRefund {
		// The customer receives exactly the amount (the sender built the
		// transaction of amount + fee); the fee is reserved on top.
		var ps []Posting
		if !tx.NetworkFee.IsZero() {
			ps = mustBalance([]Posting{
				{Account: AvailableAccount(r.MerchantID), Asset: r.Asset, Amount: tx.NetworkFee.Neg()},
				{Account: ReservedAccount(r.MerchantID), Asset: r.Asset, Amount: tx.NetworkFee},
			})
		}
		return []Event{PayoutSigned{PayoutID: r.PayoutID, MerchantID: r.MerchantID, Asset: r.Asset, TxID: tx.TxID, Raw: tx.Raw,
			Nonce: tx.Nonce, Inputs: tx.Inputs, NetworkFee: tx.NetworkFee, Sent: r.Amount, SignedAt: now.UTC(), Postings: ps,
			FeeConverted: tx.FeeConverted && !tx.NetworkFee.IsZero()}}, nil
	}
	if tx.NetworkFee.Cmp(r.Amount) >= 0 {
		return nil, fmt.Errorf("%w: network fee %s is not below the payout's %s", ErrInvalidAmount, tx.NetworkFee, r.Amount)
	}
	return []Event{PayoutSigned{PayoutID: r.PayoutID, MerchantID: r.MerchantID, Asset: r.Asset, TxID: tx.TxID, Raw: tx.Raw,
		Nonce: tx.Nonce, Inputs: tx.Inputs, NetworkFee: tx.NetworkFee, Sent: r.Amount.Sub(tx.NetworkFee), SignedAt: now.UTC(),
		FeeConverted: tx.FeeConverted && !tx.NetworkFee.IsZero()}}, nil
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
	return p.ConfirmPaid(confirmations, required, nil, now)
}

// ConfirmPaid is Confirm with the network fee the chain says the
// transaction paid: below the signed fee, it is the payout's network fee
// and the rest of the signed fee goes back to the available balance
// (FeeReturned). Nil, negative or not below the signed fee: the signed
// fee stands. Errors: ErrNotFound, ErrInvalidState.
func (p *Payout) ConfirmPaid(confirmations, required int, paidFee *Amount, now time.Time) ([]Event, error) {
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
	c := PayoutConfirmed{PayoutID: r.PayoutID, MerchantID: r.MerchantID, Asset: r.Asset, TxID: s.TxID, Amount: r.Amount,
		NetworkFee: s.NetworkFee, Sent: s.Sent, Confirmations: confirmations, ConfirmedAt: now.UTC()}
	var returned Amount
	if paidFee != nil && !paidFee.IsNegative() && paidFee.LessThan(s.NetworkFee) {
		if _, err := paidFee.BaseUnits(r.Decimals); err != nil {
			return nil, err
		}
		returned = s.NetworkFee.Sub(*paidFee)
		c.NetworkFee, c.FeeReturned = *paidFee, &returned
	}
	c.Postings = mustBalance(confirmPostings(r, s, c.NetworkFee, returned))
	if r.Kind == PayoutKindRefund {
		c.NetOfNetworkFee, c.Kind, c.InvoiceID, c.ToAddress = true, r.Kind, r.SourceInvoiceID, r.ToAddress
	}
	return []Event{c}, nil
}

// Reserved returns what a payout holds in the reserved account: its
// amount, and a signed refund's network fee on top.
func (p *Payout) Reserved() Amount { return reservedOf(p.req, p.signed) }

func reservedOf(r PayoutRequested, s PayoutSigned) Amount {
	if r.Kind == PayoutKindRefund && s.TxID != "" {
		return r.Amount.Add(s.NetworkFee)
	}
	return r.Amount
}

// confirmPostings move the reservation out: what was sent, the fee the
// network took, and what it did not take back to available.
func confirmPostings(r PayoutRequested, s PayoutSigned, fee, returned Amount) []Posting {
	ps := []Posting{
		{Account: ReservedAccount(r.MerchantID), Asset: r.Asset, Amount: reservedOf(r, s).Neg()},
		{Account: ExternalAccount, Asset: r.Asset, Amount: s.Sent},
	}
	if !fee.IsZero() {
		ps = append(ps, Posting{Account: FeeAccountOf(s), Asset: r.Asset, Amount: fee})
	}
	if !returned.IsZero() {
		ps = append(ps, Posting{Account: AvailableAccount(r.MerchantID), Asset: r.Asset, Amount: returned})
	}
	return ps
}

// FeeAccountOf is where a confirmed payout's network fee goes: to the
// network (NetworkFeeAccount), or, when the fee is a native coin burned and
// converted into the payout's token, to the operator
// (NetworkFeeRevenueAccount).
func FeeAccountOf(s PayoutSigned) string {
	if s.FeeConverted {
		return NetworkFeeRevenueAccount
	}
	return NetworkFeeAccount
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
	// A refund's reserved network fee is released too.
	held := p.Reserved()
	return []Event{PayoutFailed{PayoutID: r.PayoutID, MerchantID: r.MerchantID, Asset: r.Asset, Amount: held, Reason: reason, FailedAt: now.UTC(),
		Postings: mustBalance([]Posting{
			{Account: ReservedAccount(r.MerchantID), Asset: r.Asset, Amount: held.Neg()},
			{Account: AvailableAccount(r.MerchantID), Asset: r.Asset, Amount: held},
		})}}, nil
}

// Cancel ends a payout that nothing was signed for yet and releases its
// reservation. Canceling it again is a no-op. Errors: ErrNotFound,
// ErrInvalidState (signed, sent, confirmed or failed: a signed
// transaction may already be on its way).
func (p *Payout) Cancel(now time.Time) ([]Event, error) {
	if err := p.mustExist(); err != nil {
		return nil, err
	}
	switch p.status {
	case PayoutCanceledStatus:
		return nil, nil
	case PayoutRequestedStatus:
	case PayoutSignedStatus:
		return nil, fmt.Errorf("%w: payout %s is already signed and on its way; it can no longer be canceled", ErrInvalidState, p.req.PayoutID)
	default:
		return nil, fmt.Errorf("%w: payout %s is %s; only a payout not yet sent can be canceled", ErrInvalidState, p.req.PayoutID, p.status)
	}
	r := p.req
	return []Event{PayoutCanceled{PayoutID: r.PayoutID, MerchantID: r.MerchantID, Asset: r.Asset, Amount: r.Amount, CanceledAt: now.UTC(),
		Postings: mustBalance([]Posting{
			{Account: ReservedAccount(r.MerchantID), Asset: r.Asset, Amount: r.Amount.Neg()},
			{Account: AvailableAccount(r.MerchantID), Asset: r.Asset, Amount: r.Amount},
		})}}, nil
}

// Tx is the recorded transaction, as the sender built it.
func (e PayoutSigned) Tx() SignedTx {
	return SignedTx{TxID: e.TxID, Raw: e.Raw, Nonce: e.Nonce, Inputs: e.Inputs, NetworkFee: e.NetworkFee, FeeConverted: e.FeeConverted}
}

// RefundableNet is what an invoice left its merchant: its credited
// payments (confirmed, not reverted) less its fee. Its refunds never
// exceed it; the platform fee is not returned.
func (inv *Invoice) RefundableNet() Amount { return inv.credited().Sub(inv.Charged()) }

// RequestRefund decides a refund of an invoice against the funds: at most
// room (the invoice's refundable net less its refunds that have not
// failed), and within the available balance like any payout. Amount nil
// refunds the whole room. Errors: ErrRefundExceeded, ErrInsufficientFunds,
// ErrInvalidAmount, ErrValidation.
func (f *Funds) RequestRefund(r PayoutRequest, credited, room Amount, now time.Time) (PayoutRequested, error) {
	if r.SourceInvoiceID == "" {
		return PayoutRequested{}, fmt.Errorf("domain: a refund needs its invoice")
	}
	r.Kind, r.AtMost = PayoutKindRefund, false
	if r.Amount == nil {
		if !room.IsPositive() {
			return PayoutRequested{}, fmt.Errorf("%w: nothing is left to refund", ErrRefundExceeded)
		}
		a := room
		r.Amount = &a
	} else if r.Amount.IsPositive() && r.Amount.Cmp(room) > 0 {
		return PayoutRequested{}, fmt.Errorf("%w: %s requested, %s left to refund", ErrRefundExceeded, r.Amount, room)
	}
	return f.RequestPayout(r, credited, now)
}
