package domain

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in       string
		decimals int32
		want     string // canonical; "" means an error
	}{
		{"49.99", 6, "49.99"},
		{"49.990000", 6, "49.99"},
		{"0", 6, "0"},
		{"0.000001", 6, "0.000001"},
		{"0.0000001", 6, ""},
		{"1", 0, "1"},
		{"1.0", 0, ""},
		{"1.000000000000000001", 18, "1.000000000000000001"},
		{"21000000", 8, "21000000"},
		{"", 8, ""},
		{" 1", 8, ""},
		{"1 ", 8, ""},
		{"+1", 8, ""},
		{"-1", 8, ""},
		{"1e3", 8, ""},
		{"1E3", 8, ""},
		{".5", 8, ""},
		{"5.", 8, ""},
		{".", 8, ""},
		{"1.2.3", 8, ""},
		{"01", 8, ""},
		{"00.1", 8, ""},
		{"0.10", 8, "0.1"},
		{"1,5", 8, ""},
		{"0x10", 8, ""},
		{"NaN", 8, ""},
		{"Infinity", 8, ""},
		{"１", 8, ""}, // a full-width digit
		{strings.Repeat("9", 50), 8, ""},
		{strings.Repeat("9", 30) + "." + strings.Repeat("9", 18), 18, strings.Repeat("9", 30) + "." + strings.Repeat("9", 18)},
	}
	for _, tc := range tests {
		got, err := ParseAmount(tc.in, tc.decimals)
		if tc.want == "" {
			if !errors.Is(err, ErrInvalidAmount) {
				t.Errorf("ParseAmount(%q, %d) = %v, %v; want ErrInvalidAmount", tc.in, tc.decimals, got, err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ParseAmount(%q, %d) = %q, %v; want %q", tc.in, tc.decimals, got, err, tc.want)
		}
	}
}

func TestBaseUnitsRoundTrip(t *testing.T) {
	a := MustAmount("49.990001")
	u, err := a.BaseUnits(6)
	if err != nil || u.String() != "49990001" {
		t.Fatalf("BaseUnits = %v, %v", u, err)
	}
	if back := FromBaseUnits(u, 6); !back.Equal(a) {
		t.Fatalf("FromBaseUnits = %s", back)
	}
	if _, err := MustAmount("0.1234567").BaseUnits(6); !errors.Is(err, ErrInvalidAmount) {
		t.Fatalf("7 decimals into 6: %v", err)
	}
	wei, _ := new(big.Int).SetString("1000000000000000001", 10)
	if got := FromBaseUnits(wei, 18).String(); got != "1.000000000000000001" {
		t.Fatalf("wei = %s", got)
	}
}

func TestAmountJSON(t *testing.T) {
	var a Amount
	for _, bad := range []string{`1.5`, `"1e5"`, `"abc"`, `null1`} {
		if err := a.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("UnmarshalJSON(%s) accepted", bad)
		}
	}
	if err := a.UnmarshalJSON([]byte(`"-0.25"`)); err != nil || a.String() != "-0.25" {
		t.Fatalf("signed posting amount: %s, %v", a, err)
	}
	// Plain strings are read without decoding them again; escaped ones
	// still decode as JSON.
	if err := a.UnmarshalJSON([]byte(`"1\u002e5"`)); err != nil || a.String() != "1.5" {
		t.Fatalf("escaped amount: %s, %v", a, err)
	}
	for _, bad := range []string{`""`, `"`, `"1.5`, `"-"`, `"1.5 "`} {
		if err := a.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("UnmarshalJSON(%s) accepted", bad)
		}
	}
	b, _ := MustAmount("49.9900").MarshalJSON()
	if string(b) != `"49.99"` {
		t.Fatalf("MarshalJSON = %s", b)
	}
}

// FuzzParseAmount: anything accepted is canonical digits that round-trip
// through base units, and never has more decimals than allowed.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"49.99", "0", "1e3", "-1", " 1", "0.000001", "00", "1.", strings.Repeat("9", 49)} {
		f.Add(s, int32(6))
	}
	f.Fuzz(func(t *testing.T, s string, decimals int32) {
		if decimals < 0 || decimals > 18 {
			return
		}
		a, err := ParseAmount(s, decimals)
		if err != nil {
			if !errors.Is(err, ErrInvalidAmount) {
				t.Fatalf("error %v is not ErrInvalidAmount", err)
			}
			return
		}
		for _, r := range s {
			if (r < '0' || r > '9') && r != '.' {
				t.Fatalf("accepted %q with %q", s, r)
			}
		}
		if a.IsNegative() {
			t.Fatalf("accepted negative %q", s)
		}
		u, err := a.BaseUnits(decimals)
		if err != nil {
			t.Fatalf("accepted %q but BaseUnits(%d): %v", s, decimals, err)
		}
		if !FromBaseUnits(u, decimals).Equal(a) {
			t.Fatalf("base units round trip of %q", s)
		}
		again, err := ParseAmount(a.String(), decimals)
		if err != nil || !again.Equal(a) {
			t.Fatalf("canonical %q of %q does not parse back: %v", a.String(), s, err)
		}
	})
}

// parseSmall, UnmarshalJSON's fast path, accepts exactly what ParseAmount
// accepts within its 18 digits, and gives the amount decimal.NewFromString
// gives: the same value and scale (so the same text), on every string of a
// small alphabet up to 6 characters and on long ones around the 18-digit
// edge; and so does ParseAmount.
func TestParseSmallAgreesWithParseAmount(t *testing.T) {
	// ParseAmount's rules, and the value as shopspring/decimal parses the
	// text (ParseAmount itself now takes the same short cut).
	general := func(s string) (Amount, error) {
		if _, err := ParseAmount(strings.TrimPrefix(s, "-"), 18); err != nil {
			return Amount{}, err
		}
		d, err := decimal.NewFromString(s)
		return Amount{d: d}, err
	}
	check := func(s string) {
		fast, ok := parseSmall([]byte(s))
		want, err := general(s)
		digits := strings.Count(s, "0") + strings.Count(s, "1") + strings.Count(s, "9")
		switch {
		case ok && err != nil:
			t.Fatalf("parseSmall(%q) = %s, ParseAmount says %v", s, fast, err)
		case ok && (!fast.d.Equal(want.d) || fast.d.Exponent() != want.d.Exponent() || fast.String() != want.String()):
			t.Fatalf("parseSmall(%q) = %s (exp %d), ParseAmount %s (exp %d)", s, fast, fast.d.Exponent(), want, want.d.Exponent())
		case !ok && err == nil && digits <= 18:
			t.Fatalf("parseSmall(%q) refused an amount of %d digits", s, digits)
		}
		if err == nil && !strings.HasPrefix(s, "-") {
			if got, _ := ParseAmount(s, 18); got.d.Exponent() != want.d.Exponent() || !got.d.Equal(want.d) {
				t.Fatalf("ParseAmount(%q) = %s (exp %d), decimal %s (exp %d)", s, got, got.d.Exponent(), want, want.d.Exponent())
			}
		}
	}
	alphabet := []string{"0", "1", "9", ".", "-", "x"}
	var walk func(prefix string, n int)
	walk = func(prefix string, n int) {
		check(prefix)
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			walk(prefix+c, n-1)
		}
	}
	walk("", 6)
	for _, s := range []string{"999999999999999999", "9999999999999999999", "-999999999999999999", "0.999999999999999999",
		"0.000000000000000001", "0.0000000000000000001", "99999999.9999999999", "999999999.9999999999", "1.000000000000000000"} {
		check(s)
	}
	var a Amount
	if err := a.UnmarshalJSON([]byte(`"-12.50"`)); err != nil || a.String() != "-12.5" || a.d.Exponent() != -2 {
		t.Fatalf(`UnmarshalJSON("-12.50") = %s (exp %d), %v`, a, a.d.Exponent(), err)
	}
}

func BenchmarkAmountUnmarshalJSON(b *testing.B) {
	in := [][]byte{[]byte(`"49.99"`), []byte(`"0.124975"`), []byte(`"-1250.000001"`), []byte(`"21000000"`)}
	var a Amount
	for i := 0; i < b.N; i++ {
		if err := a.UnmarshalJSON(in[i%len(in)]); err != nil {
			b.Fatal(err)
		}
	}
}
