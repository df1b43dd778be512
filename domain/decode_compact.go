package domain

import (
	"iter"
	"math"
	"time"
)

// The log's busiest types (an invoice's creation, its deposits' detection,
// confirmation and finality, its status changes: 97 % of a generated
// history) are read first by a decoder written for the compact JSON that
// encoding/json writes them in. It switches on each name instead of
// looking it up, and reflects on nothing: in a profile of picd audit at 10M
// events, the JSON v2 engine took 42 of 120 CPU seconds. It reads plain
// input only: no whitespace, no escapes or bytes outside printable ASCII
// in strings, no null, no name it does not know, no name twice, numbers
// that are plain integers, times in the shape the gateway writes. Anything
// else, valid or not, goes to the JSON v2 engine, which decides: so a body
// decodes to what the engine reads from it, or fails as it does
// (TestCompactDecodersAgree, FuzzCompactDecoders).

// compactOr decodes data with compact, or with the JSON v2 engine when
// compact declines it.
func compactOr[T Event](compact func([]byte) (T, bool)) func([]byte) (Event, error) {
	return func(data []byte) (Event, error) {
		if e, ok := compact(data); ok {
			return e, nil
		}
		return decode[T](data)
	}
}

// compactReader walks one body; bad is set at the first byte it declines.
type compactReader struct {
	b   []byte
	i   int
	bad bool
}

func (r *compactReader) decline() { r.bad = true }

// done: the whole body was read, and nothing was declined.
func (r *compactReader) done() bool { return !r.bad && r.i == len(r.b) }

func (r *compactReader) take(c byte) bool {
	if r.bad || r.i >= len(r.b) || r.b[r.i] != c {
		r.bad = true
		return false
	}
	r.i++
	return true
}

func (r *compactReader) peek(c byte) bool { return !r.bad && r.i < len(r.b) && r.b[r.i] == c }

// object yields the names of an object's members; the loop's body must
// read each member's value (or decline).
func (r *compactReader) object() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		if !r.take('{') {
			return
		}
		if r.peek('}') {
			r.i++
			return
		}
		for {
			name, ok := r.plain()
			if !ok || !r.take(':') {
				return
			}
			if !yield(name) || r.bad {
				return
			}
			if r.peek(',') {
				r.i++
				continue
			}
			r.take('}')
			return
		}
	}
}

// once marks member n of an object as read in seen, declining a second
// read: the engine refuses a name twice.
func (r *compactReader) once(seen *uint64, n uint) {
	if *seen&(1<<n) != 0 {
		r.bad = true
	}
	*seen |= 1 << n
}

// plain reads a string of printable ASCII without escapes, returning its
// bytes between the quotes.
func (r *compactReader) plain() ([]byte, bool) {
	if !r.take('"') {
		return nil, false
	}
	start := r.i
	for ; r.i < len(r.b); r.i++ {
		c := r.b[r.i]
		if c == '"' {
			r.i++
			return r.b[start : r.i-1], true
		}
		if c < 0x20 || c >= 0x7f || c == '\\' {
			break
		}
	}
	r.bad = true
	return nil, false
}

func (r *compactReader) str(dst *string) {
	if s, ok := r.plain(); ok {
		*dst = string(s)
	}
}

// common reads a string that is often one of commonStrings, shared
// instead of allocated: a third of the compact decoders' allocations were
// strings.
func (r *compactReader) common(dst *string) {
	if s, ok := r.plain(); ok {
		if c, ok := commonStrings[string(s)]; ok {
			*dst = c
		} else {
			*dst = string(s)
		}
	}
}

// commonStrings are the assets, statuses, fixed accounts and other values
// of few kinds that the busiest events repeat.
var commonStrings = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{ExternalAccount, FeeAccount, NetworkFeeAccount, NetworkFeeRevenueAccount, OperatorNetworkCostsAccount,
		RoundingHalfUp, string(CreatedBySecretKey), string(CreatedByPublishableKey),
		string(StatusNew), string(StatusPartiallyPaid), string(StatusConfirming), string(StatusPaid), string(StatusExpired), string(StatusReverted)} {
		m[s] = s
	}
	for _, a := range DefaultAssets().List() {
		m[a.Code] = a.Code
	}
	return m
}()

// amount reads an amount as Amount.UnmarshalJSON does, which the engine
// calls with the quoted value.
func (r *compactReader) amount(dst *Amount) {
	start := r.i
	if _, ok := r.plain(); ok && dst.UnmarshalJSON(r.b[start:r.i]) != nil {
		r.bad = true
	}
}

// timestamp reads YYYY-MM-DDTHH:MM:SS[.fraction]Z, the shape Go writes a
// UTC time in; others (offsets, which the engine checks beyond
// time.Time.UnmarshalText) are declined.
func (r *compactReader) timestamp(dst *time.Time) {
	s, ok := r.plain()
	if !ok {
		return
	}
	const shape = "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(shape)+1 || s[len(s)-1] != 'Z' {
		r.bad = true
		return
	}
	for i := range len(s) - 1 {
		c, want := s[i], byte('d')
		if i < len(shape) {
			want = shape[i]
		} else if i == len(shape) {
			want = '.'
		}
		if want == 'd' && (c < '0' || c > '9') || want != 'd' && c != want {
			r.bad = true
			return
		}
	}
	if dst.UnmarshalText(s) != nil {
		r.bad = true
	}
}

// integer reads a plain integer of at most 18 digits (no fraction, no
// exponent, no leading zero) within [lo, hi].
func (r *compactReader) integer(lo, hi int64) int64 {
	neg := r.peek('-')
	if neg {
		r.i++
	}
	start, v := r.i, int64(0)
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' && r.i-start < 18 {
		v = v*10 + int64(r.b[r.i]-'0')
		r.i++
	}
	n := r.i - start
	if neg {
		v = -v
	}
	// What follows the digits (a 19th digit, a fraction, an exponent) is
	// declined by the object around them, which wants ',' or '}'.
	if n == 0 || n > 1 && r.b[start] == '0' || neg && v == 0 || v < lo || v > hi {
		r.bad = true
	}
	return v
}

// int reads an int within int32's range, which the counts and depths it
// is used for never leave (a larger one goes to the engine); int64 needs
// no bound, 18 digits being within its range.
func (r *compactReader) int(dst *int)     { *dst = int(r.integer(math.MinInt32, math.MaxInt32)) }
func (r *compactReader) int32(dst *int32) { *dst = int32(r.integer(math.MinInt32, math.MaxInt32)) }
func (r *compactReader) int64(dst *int64) { *dst = r.integer(math.MinInt64, math.MaxInt64) }

func (r *compactReader) boolean(dst *bool) {
	switch {
	case r.i+4 <= len(r.b) && string(r.b[r.i:r.i+4]) == "true":
		*dst, r.i = true, r.i+4
	case r.i+5 <= len(r.b) && string(r.b[r.i:r.i+5]) == "false":
		*dst, r.i = false, r.i+5
	default:
		r.bad = true
	}
}

func (r *compactReader) fee(dst *FeeCalc) {
	var seen uint64
	for name := range r.object() {
		switch string(name) {
		case "base":
			r.once(&seen, 0)
			r.amount(&dst.Base)
		case "bps":
			r.once(&seen, 1)
			r.int64(&dst.Bps)
		case "decimals":
			r.once(&seen, 2)
			r.int32(&dst.Decimals)
		case "rounding":
			r.once(&seen, 3)
			r.common(&dst.Rounding)
		case "fee":
			r.once(&seen, 4)
			r.amount(&dst.Fee)
		default:
			r.decline()
		}
	}
}

// postings reads an array of postings; [] is an empty list, as the
// engine makes it.
func (r *compactReader) postings(dst *[]Posting) {
	if !r.take('[') {
		return
	}
	out := make([]Posting, 0, 2)
	for !r.peek(']') && !r.bad {
		if len(out) > 0 && !r.take(',') {
			return
		}
		var p Posting
		var seen uint64
		for name := range r.object() {
			switch string(name) {
			case "account":
				r.once(&seen, 0)
				r.common(&p.Account)
			case "asset":
				r.once(&seen, 1)
				r.common(&p.Asset)
			case "amount":
				r.once(&seen, 2)
				r.amount(&p.Amount)
			default:
				r.decline()
			}
		}
		out = append(out, p)
	}
	if r.take(']') {
		*dst = out
	}
}

func compactInvoiceCreated(data []byte) (e InvoiceCreated, ok bool) {
	r := compactReader{b: data}
	var seen uint64
	for name := range r.object() {
		switch string(name) {
		case "invoice_id":
			r.once(&seen, 0)
			r.str(&e.InvoiceID)
		case "merchant_id":
			r.once(&seen, 1)
			r.str(&e.MerchantID)
		case "asset":
			r.once(&seen, 2)
			r.common(&e.Asset)
		case "decimals":
			r.once(&seen, 3)
			r.int32(&e.Decimals)
		case "amount":
			r.once(&seen, 4)
			r.amount(&e.Amount)
		case "pay_amount":
			r.once(&seen, 5)
			r.amount(&e.PayAmount)
		case "pay_address":
			r.once(&seen, 6)
			r.str(&e.PayAddress)
		case "address_index":
			r.once(&seen, 7)
			r.int64(&e.AddressIndex)
		case "required_confirmations":
			r.once(&seen, 8)
			r.int(&e.RequiredConfirmations)
		case "finality":
			r.once(&seen, 9)
			r.int(&e.Finality)
		case "settle_asset":
			r.once(&seen, 10)
			r.common(&e.SettleAsset)
		case "convert_to":
			r.once(&seen, 11)
			r.common(&e.ConvertTo)
		case "order_id":
			r.once(&seen, 12)
			r.str(&e.OrderID)
		case "fee":
			r.once(&seen, 13)
			r.fee(&e.Fee)
		case "created_at":
			r.once(&seen, 14)
			r.timestamp(&e.CreatedAt)
		case "expires_at":
			r.once(&seen, 15)
			r.timestamp(&e.ExpiresAt)
		case "created_by":
			r.once(&seen, 16)
			r.common((*string)(&e.CreatedBy))
		case "description":
			r.once(&seen, 17)
			r.str(&e.Description)
		case "redirect_url":
			r.once(&seen, 18)
			r.str(&e.RedirectURL)
		default: // metadata and price are left to the engine
			r.decline()
		}
	}
	return e, r.done()
}

func compactDepositDetected(data []byte) (e DepositDetected, ok bool) {
	r := compactReader{b: data}
	var seen uint64
	for name := range r.object() {
		switch string(name) {
		case "invoice_id":
			r.once(&seen, 0)
			r.str(&e.InvoiceID)
		case "merchant_id":
			r.once(&seen, 1)
			r.str(&e.MerchantID)
		case "deposit_id":
			r.once(&seen, 2)
			r.str(&e.DepositID)
		case "txid":
			r.once(&seen, 3)
			r.str(&e.TxID)
		case "asset":
			r.once(&seen, 4)
			r.common(&e.Asset)
		case "amount":
			r.once(&seen, 5)
			r.amount(&e.Amount)
		case "confirmations":
			r.once(&seen, 6)
			r.int(&e.Confirmations)
		case "late":
			r.once(&seen, 7)
			r.boolean(&e.Late)
		case "detected_at":
			r.once(&seen, 8)
			r.timestamp(&e.DetectedAt)
		case "postings":
			r.once(&seen, 9)
			r.postings(&e.Postings)
		default:
			r.decline()
		}
	}
	return e, r.done()
}

func compactDepositConfirmed(data []byte) (e DepositConfirmed, ok bool) {
	r := compactReader{b: data}
	var seen uint64
	for name := range r.object() {
		switch string(name) {
		case "invoice_id":
			r.once(&seen, 0)
			r.str(&e.InvoiceID)
		case "merchant_id":
			r.once(&seen, 1)
			r.str(&e.MerchantID)
		case "deposit_id":
			r.once(&seen, 2)
			r.str(&e.DepositID)
		case "asset":
			r.once(&seen, 3)
			r.common(&e.Asset)
		case "amount":
			r.once(&seen, 4)
			r.amount(&e.Amount)
		case "confirmations":
			r.once(&seen, 5)
			r.int(&e.Confirmations)
		case "fee":
			r.once(&seen, 6)
			r.fee(&e.Fee)
		case "fee_before":
			r.once(&seen, 7)
			r.amount(&e.FeeBefore)
		case "charged":
			r.once(&seen, 8)
			r.amount(&e.Charged)
		case "net":
			r.once(&seen, 9)
			r.amount(&e.Net)
		case "convert_to":
			r.once(&seen, 10)
			r.common(&e.ConvertTo)
		case "confirmed_at":
			r.once(&seen, 11)
			r.timestamp(&e.ConfirmedAt)
		case "postings":
			r.once(&seen, 12)
			r.postings(&e.Postings)
		default:
			r.decline()
		}
	}
	return e, r.done()
}

func compactDepositFinalized(data []byte) (e DepositFinalized, ok bool) {
	r := compactReader{b: data}
	var seen uint64
	for name := range r.object() {
		switch string(name) {
		case "invoice_id":
			r.once(&seen, 0)
			r.str(&e.InvoiceID)
		case "merchant_id":
			r.once(&seen, 1)
			r.str(&e.MerchantID)
		case "deposit_id":
			r.once(&seen, 2)
			r.str(&e.DepositID)
		case "asset":
			r.once(&seen, 3)
			r.common(&e.Asset)
		case "net":
			r.once(&seen, 4)
			r.amount(&e.Net)
		case "depth":
			r.once(&seen, 5)
			r.int(&e.Depth)
		case "round":
			r.once(&seen, 6)
			r.int(&e.Round)
		case "finalized_at":
			r.once(&seen, 7)
			r.timestamp(&e.FinalizedAt)
		case "postings":
			r.once(&seen, 8)
			r.postings(&e.Postings)
		default:
			r.decline()
		}
	}
	return e, r.done()
}

func compactInvoiceStatusChanged(data []byte) (e InvoiceStatusChanged, ok bool) {
	r := compactReader{b: data}
	var seen uint64
	for name := range r.object() {
		switch string(name) {
		case "invoice_id":
			r.once(&seen, 0)
			r.str(&e.InvoiceID)
		case "merchant_id":
			r.once(&seen, 1)
			r.str(&e.MerchantID)
		case "from":
			r.once(&seen, 2)
			r.common((*string)(&e.From))
		case "to":
			r.once(&seen, 3)
			r.common((*string)(&e.To))
		case "amount_received":
			r.once(&seen, 4)
			r.amount(&e.AmountReceived)
		case "at":
			r.once(&seen, 5)
			r.timestamp(&e.At)
		default:
			r.decline()
		}
	}
	return e, r.done()
}
