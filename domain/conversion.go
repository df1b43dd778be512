package domain

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// PriceQuote is a price from an oracle: one Base is worth Rate of Quote,
// as Source said at At. Rates are exact decimals, never floats.
type PriceQuote struct {
	Base   string          `json:"base"`
	Quote  string          `json:"quote"`
	Rate   decimal.Decimal `json:"rate"`
	Source string          `json:"source"`
	At     time.Time       `json:"at"`
}

// RoundingDown names how a converted amount is cut to the target asset's
// precision: toward zero, so a conversion never pays out more than the rate.
const RoundingDown = "down"

// Conversion reasons.
const (
	ConversionSettleAs      = "settle_as"      // an invoice settled into another coin
	ConversionConsolidateTo = "consolidate_to" // a payment credited while the account consolidates
	ConversionConsolidate   = "consolidate"    // POST /v1/consolidate: a balance already credited
	ConversionWithdrawal    = "withdrawal"     // a withdrawal paid out in another coin
)

// ConversionExecuted converts part of a merchant's balance into another
// asset at an oracle's rate. It lives in the funds stream of From (it
// debits that balance) and carries both legs as postings:
//
//	available(from) −FromAmount, external(from) +FromUsed, platform:fees(from) +Remainder
//	external(to) −ToAmount, available(to) +Net, platform:fees(to) +Fee
//
// ToAmount = FromAmount × Rate rounded down to the target's decimals; the
// part of FromAmount that rounding left unconverted (Remainder, FromAmount
// − FromUsed, FromUsed = ToAmount / Rate rounded up) is fee revenue, never
// lost (money rule 2). Fee is on ToAmount at 25 bps for a balance already
// credited at 25, and 0 for a payment whose invoice paid the 50 bps tier.
type ConversionExecuted struct {
	ConversionID  string          `json:"conversion_id"`
	MerchantID    string          `json:"merchant_id"`
	CommandID     string          `json:"command_id"`
	Reason        string          `json:"reason"`
	InvoiceID     string          `json:"invoice_id,omitempty"`
	DepositID     string          `json:"deposit_id,omitempty"`
	From          string          `json:"from"`
	FromAmount    Amount          `json:"from_amount"`
	FromDecimals  int32           `json:"from_decimals"`
	To            string          `json:"to"`
	ToDecimals    int32           `json:"to_decimals"`
	Rate          decimal.Decimal `json:"rate"`
	RateSource    string          `json:"rate_source"`
	QuotedAt      time.Time       `json:"quoted_at"`
	Rounding      string          `json:"rounding"`
	ToAmount      Amount          `json:"to_amount"`
	FromUsed      Amount          `json:"from_used"`
	Remainder     Amount          `json:"remainder"`
	Fee           FeeCalc         `json:"fee"`
	Net           Amount          `json:"net"`
	Credited      Amount          `json:"credited"`
	DebitedBefore Amount          `json:"debited_before"`
	ExecutedAt    time.Time       `json:"executed_at"`
	Postings      []Posting       `json:"postings"`
}

func (ConversionExecuted) EventType() string           { return TypeConversionExecuted }
func (e ConversionExecuted) LedgerPostings() []Posting { return e.Postings }

// Converted is FromAmount × rate, rounded down to toDecimals.
func Converted(from Amount, rate decimal.Decimal, toDecimals int32) Amount {
	return Amount{d: from.d.Mul(rate).RoundDown(toDecimals)}
}

// ConversionQuote is the arithmetic of a conversion, shared by the quote
// endpoint and ConversionExecuted.
type ConversionQuote struct {
	FromAmount Amount
	ToAmount   Amount // before the fee
	Fee        FeeCalc
	Net        Amount // what the merchant receives
}

// QuoteConversion computes a conversion of amount at rate with feeBps.
// Errors: ErrInvalidAmount when the result rounds to nothing.
func QuoteConversion(amount Amount, rate decimal.Decimal, to Asset, feeBps int64) (ConversionQuote, error) {
	if !rate.IsPositive() {
		return ConversionQuote{}, fmt.Errorf("%w: rate %s", ErrPriceUnavailable, rate)
	}
	gross := Converted(amount, rate, to.Decimals)
	fee := ComputeFee(gross, feeBps, to.Decimals)
	net := gross.Sub(fee.Fee)
	if !net.IsPositive() {
		return ConversionQuote{}, fmt.Errorf("%w: %s converts to nothing in %s", ErrInvalidAmount, amount, to.Code)
	}
	return ConversionQuote{FromAmount: amount, ToAmount: gross, Fee: fee, Net: net}, nil
}

// ConversionRequest is a conversion before the funds decide.
type ConversionRequest struct {
	ConversionID string
	MerchantID   string
	CommandID    string
	From, To     Asset
	// Amount nil: the whole available balance of From.
	Amount    *Amount
	Price     PriceQuote
	FeeBps    int64
	Reason    string
	InvoiceID string
	DepositID string
}

// Convert decides a conversion against the funds of r.From.
// Errors: ErrInsufficientFunds, ErrInvalidAmount, ErrValidation, ErrPriceUnavailable.
func (f *Funds) Convert(r ConversionRequest, credited Amount, now time.Time) (ConversionExecuted, error) {
	if r.From.Code == r.To.Code {
		return ConversionExecuted{}, fmt.Errorf("%w: cannot convert %s into itself", ErrValidation, r.From.Code)
	}
	if r.Price.Base != r.From.Code || r.Price.Quote != r.To.Code {
		return ConversionExecuted{}, fmt.Errorf("domain: price of %s/%s for a %s→%s conversion", r.Price.Base, r.Price.Quote, r.From.Code, r.To.Code)
	}
	amount, err := f.debitAmount(r.Amount, credited, r.From.Decimals)
	if err != nil {
		return ConversionExecuted{}, err
	}
	q, err := QuoteConversion(amount, r.Price.Rate, r.To, r.FeeBps)
	if err != nil {
		return ConversionExecuted{}, err
	}
	m := r.MerchantID
	used := FromUsed(amount, q.ToAmount, r.Price.Rate, r.From.Decimals)
	remainder := amount.Sub(used)
	postings := nonZero([]Posting{
		{Account: AvailableAccount(m), Asset: r.From.Code, Amount: amount.Neg()},
		{Account: ExternalAccount, Asset: r.From.Code, Amount: used},
		{Account: FeeAccount, Asset: r.From.Code, Amount: remainder},
		{Account: ExternalAccount, Asset: r.To.Code, Amount: q.ToAmount.Neg()},
		{Account: AvailableAccount(m), Asset: r.To.Code, Amount: q.Net},
		{Account: FeeAccount, Asset: r.To.Code, Amount: q.Fee.Fee},
	})
	return ConversionExecuted{
		ConversionID: r.ConversionID, MerchantID: m, CommandID: r.CommandID, Reason: r.Reason, InvoiceID: r.InvoiceID, DepositID: r.DepositID,
		From: r.From.Code, FromAmount: amount, FromDecimals: r.From.Decimals, To: r.To.Code, ToDecimals: r.To.Decimals,
		Rate: r.Price.Rate, RateSource: r.Price.Source, QuotedAt: r.Price.At.UTC(), Rounding: RoundingDown,
		ToAmount: q.ToAmount, FromUsed: used, Remainder: remainder, Fee: q.Fee, Net: q.Net, Credited: credited, DebitedBefore: f.debited, ExecutedAt: now.UTC(),
		Postings: mustBalance(postings),
	}, nil
}

// Verify recomputes a conversion from its inputs: the converted amount,
// the fee and the net.
func (e ConversionExecuted) Verify() error {
	if e.Rounding != RoundingDown {
		return fmt.Errorf("conversion %s: rounding %q", e.ConversionID, e.Rounding)
	}
	if want := Converted(e.FromAmount, e.Rate, e.ToDecimals); !want.Equal(e.ToAmount) {
		return fmt.Errorf("conversion %s: %s × %s = %s, recorded %s", e.ConversionID, e.FromAmount, e.Rate, want, e.ToAmount)
	}
	if !e.Fee.Base.Equal(e.ToAmount) || e.Fee.Decimals != e.ToDecimals {
		return fmt.Errorf("conversion %s: fee base %s/%d, converted %s/%d", e.ConversionID, e.Fee.Base, e.Fee.Decimals, e.ToAmount, e.ToDecimals)
	}
	if err := e.Fee.Verify(); err != nil {
		return fmt.Errorf("conversion %s: %w", e.ConversionID, err)
	}
	if used := FromUsed(e.FromAmount, e.ToAmount, e.Rate, e.FromDecimals); !used.Equal(e.FromUsed) ||
		!e.FromUsed.Add(e.Remainder).Equal(e.FromAmount) {
		return fmt.Errorf("conversion %s: %s converted of %s (remainder %s), recomputed %s", e.ConversionID, e.FromUsed, e.FromAmount, e.Remainder, used)
	}
	if !e.Net.Add(e.Fee.Fee).Equal(e.ToAmount) {
		return fmt.Errorf("conversion %s: net %s + fee %s != %s", e.ConversionID, e.Net, e.Fee.Fee, e.ToAmount)
	}
	return nil
}

// FromUsed is the part of from that toAmount is worth at rate: toAmount /
// rate rounded up to the source's decimals, never more than from.
func FromUsed(from, toAmount Amount, rate decimal.Decimal, fromDecimals int32) Amount {
	if !rate.IsPositive() {
		return from
	}
	used := Amount{d: toAmount.d.DivRound(rate, 40).RoundUp(fromDecimals)}
	if used.Cmp(from) > 0 {
		return from
	}
	return used
}

// ConversionFeeFor is the fee of a conversion (money rule 2): nothing for
// a payment converted as it is credited, whose deposit already paid the
// 50 bps tier; the other 25 bps for a balance credited at 25.
func ConversionFeeFor(reason string) int64 {
	if reason == ConversionSettleAs || reason == ConversionConsolidateTo {
		return 0
	}
	return ConversionFeeBps - FeeBps
}
