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
	p := scanPlain(s)
	if !p.plain {
		return Amount{}, fmt.Errorf("%w: %q is not a plain decimal number", ErrInvalidAmount, s)
	}
	if p.intDigits == 0 || (p.point && p.fracDigits == 0) {
		return Amount{}, fmt.Errorf("%w: %q needs digits on both sides of the point", ErrInvalidAmount, s)
	}
	if p.intDigits > 1 && s[0] == '0' {
		return Amount{}, fmt.Errorf("%w: %q has leading zeros", ErrInvalidAmount, s)
	}
	if int32(p.fracDigits) > decimals {
		return Amount{}, fmt.Errorf("%w: %q has more than %d decimals", ErrInvalidAmount, s, decimals)
	}
	if p.small() {
		return Amount{d: decimal.New(p.v, -int32(p.fracDigits))}, nil
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

// plainDecimal is what scanning a plain decimal's text found.
type plainDecimal struct {
	plain                 bool // digits and at most one point, nothing else
	point                 bool
	intDigits, fracDigits int
	v                     int64 // the digits as an integer, if small
}

// small: at most 18 digits, which v holds exactly. A decimal of these is
// made from v and its scale without a big.Int parsing the text, which was
// most of an amount's cost when an audit decodes the whole log.
func (p plainDecimal) small() bool { return p.intDigits+p.fracDigits <= 18 }

func scanPlain[T string | []byte](s T) plainDecimal {
	p := plainDecimal{plain: true}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if p.intDigits+p.fracDigits < 18 {
				p.v = p.v*10 + int64(c-'0')
			}
			if p.point {
				p.fracDigits++
			} else {
				p.intDigits++
			}
		case c == '.' && !p.point:
			p.point = true
		default:
			p.plain = false
			return p
		}
	}
	return p
}

// parseSmall parses an amount of the log's usual kind, an optional minus
// and at most 18 digits: what ParseAmount (at 18 decimals) would, from the
// JSON's bytes. ok is false for anything else, which UnmarshalJSON then
// parses (and rejects) the general way.
func parseSmall(b []byte) (Amount, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) > 19 { // 18 digits and a point
		return Amount{}, false
	}
	p := scanPlain(b)
	if !p.plain || !p.small() || p.intDigits == 0 || (p.point && p.fracDigits == 0) || (p.intDigits > 1 && b[0] == '0') {
		return Amount{}, false
	}
	if neg {
		p.v = -p.v
	}
	return Amount{d: decimal.New(p.v, -int32(p.fracDigits))}, true
}

var bigOne = big.NewInt(1)
