package domain

import (
	"errors"
	"math/big"
	"strings"
	"testing"
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
