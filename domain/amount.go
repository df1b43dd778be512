package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/shopspring/decimal"
)

// Amount is an exact quantity of an asset. The zero value is 0. Amounts in
// events and JSON are canonical decimal strings ("49.99", "0.124975").
type Amount struct{ d decimal.Decimal }

// MaxAmountLen bounds the text of an amount: 30 integer digits, a point and
// 18 decimals is already far beyond any real payment.
const MaxAmountLen = 49

// ParseAmount parses the API's decimal string strictly: digits with an
// optional point and at most decimals fraction digits. It rejects signs,
// exponents, whitespace, empty strings, leading zeros such as "007", a bare
// point, and strings longer than MaxAmountLen. Zero is allowed here; callers
// that need a positive amount check it. Errors: ErrInvalidAmount.
func ParseAmount(s string, decimals int32) (Amount, error) {
	if s == "" {
		return Amount{}, fmt.Errorf("%w: empty", ErrInvalidAmount)
	}
	if len(s) > MaxAmountLen {
		return Amount{}, fmt.Errorf("%w: longer than %d characters", ErrInvalidAmount, MaxAmountLen)
	}
	intDigits, fracDigits, seenPoint := 0, 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if seenPoint {
				fracDigits++
			} else {
				intDigits++
			}
		case c == '.' && !seenPoint:
			seenPoint = true
		default:
			return Amount{}, fmt.Errorf("%w: %q is not a plain decimal number", ErrInvalidAmount, s)
		}
	}
	if intDigits == 0 || (seenPoint && fracDigits == 0) {
		return Amount{}, fmt.Errorf("%w: %q needs digits on both sides of the point", ErrInvalidAmount, s)
	}
	if intDigits > 1 && s[0] == '0' {
		return Amount{}, fmt.Errorf("%w: %q has leading zeros", ErrInvalidAmount, s)
	}
	if int32(fracDigits) > decimals {
		return Amount{}, fmt.Errorf("%w: %q has more than %d decimals", ErrInvalidAmount, s, decimals)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return Amount{}, fmt.Errorf("%w: %q", ErrInvalidAmount, s)
	}
	return Amount{d: d}, nil
}

// MustAmount parses a canonical literal; for tests and constants.
func MustAmount(s string) Amount {
	d, err := decimal.NewFromString(s)
	if err != nil {
		panic(err)
	}
	return Amount{d: d}
}

// AmountFromDecimal wraps d.
func AmountFromDecimal(d decimal.Decimal) Amount { return Amount{d: d} }

// FromBaseUnits converts an integer count of an asset's smallest unit.
func FromBaseUnits(units *big.Int, decimals int32) Amount {
	return Amount{d: decimal.NewFromBigInt(units, -decimals)}
}

// BaseUnits converts to an integer count of the smallest unit.
// Errors: ErrInvalidAmount when the amount has more decimals than the asset.
func (a Amount) BaseUnits(decimals int32) (*big.Int, error) {
	scaled := a.d.Shift(decimals)
	if !scaled.Equal(scaled.Truncate(0)) {
		return nil, fmt.Errorf("%w: %s has more than %d decimals", ErrInvalidAmount, a, decimals)
	}
	return scaled.BigInt(), nil
}

// Decimal returns the value.
func (a Amount) Decimal() decimal.Decimal { return a.d }

// String is the canonical form: no exponent, no trailing zeros, no sign for zero.
func (a Amount) String() string { return a.d.String() }

func (a Amount) Add(b Amount) Amount    { return Amount{d: a.d.Add(b.d)} }
func (a Amount) Sub(b Amount) Amount    { return Amount{d: a.d.Sub(b.d)} }
func (a Amount) Neg() Amount            { return Amount{d: a.d.Neg()} }
func (a Amount) Cmp(b Amount) int       { return a.d.Cmp(b.d) }
func (a Amount) Equal(b Amount) bool    { return a.d.Equal(b.d) }
func (a Amount) IsZero() bool           { return a.d.IsZero() }
func (a Amount) IsPositive() bool       { return a.d.IsPositive() }
func (a Amount) IsNegative() bool       { return a.d.IsNegative() }
func (a Amount) LessThan(b Amount) bool { return a.d.LessThan(b.d) }

// MarshalJSON writes the canonical string.
func (a Amount) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// UnmarshalJSON reads a decimal string (signed: postings carry negative amounts).
func (a *Amount) UnmarshalJSON(b []byte) error {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		if v, ok := parseSmall(b[1 : len(b)-1]); ok {
			*a = v
			return nil
		}
	}
	var s string
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
		// A string without escapes is its bytes (encoding/json hands over
		// valid JSON only): decoding it again was two thirds of an amount's
		// cost in a rebuild's profile.
		s = string(b[1 : len(b)-1])
	} else if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: amounts are JSON strings", ErrInvalidAmount)
	}
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	v, err := ParseAmount(s, 18)
	if err != nil {
		return err
	}
	if neg {
		v = v.Neg()
	}
	*a = v
	return nil
}

// parseSmall parses an amount of the log's usual kind, an optional minus
// and at most 18 digits, into an int64 and its scale: what ParseAmount (at
// 18 decimals) would, without a big.Int parsing the text, which was most
// of an amount's cost when an audit decodes the whole log. ok is false for
// anything else, which UnmarshalJSON then parses (and rejects) as before.
func parseSmall(b []byte) (Amount, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	var v int64
	intDigits, fracDigits, seenPoint := 0, 0, false
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v*10 + int64(c-'0')
			if seenPoint {
				fracDigits++
			} else {
				intDigits++
			}
		case c == '.' && !seenPoint:
			seenPoint = true
		default:
			return Amount{}, false
		}
		if intDigits+fracDigits > 18 {
			return Amount{}, false
		}
	}
	if intDigits == 0 || (seenPoint && fracDigits == 0) || (intDigits > 1 && b[0] == '0') {
		return Amount{}, false
	}
	if neg {
		v = -v
	}
	return Amount{d: decimal.New(v, -int32(fracDigits))}, true
}

var bigOne = big.NewInt(1)
