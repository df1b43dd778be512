package domain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Issue #17, finding 5: identifiers and names accept only what a person can
// read as it is: no bidirectional overrides, no other format or control
// characters, no invalid UTF-8 (nor U+FFFD, which JSON decoding puts in its
// place).
var refusedText = map[string]string{
	"right-to-left override U+202E":  "order-\u202e321",
	"left-to-right embedding U+202A": "a\u202ab",
	"right-to-left embedding U+202B": "a\u202bb",
	"pop directional U+202C":         "a\u202cb",
	"left-to-right override U+202D":  "a\u202db",
	"left-to-right isolate U+2066":   "a\u2066b",
	"right-to-left isolate U+2067":   "a\u2067b",
	"first strong isolate U+2068":    "a\u2068b",
	"pop directional isolate U+2069": "a\u2069b",
	"left-to-right mark U+200E":      "a\u200eb",
	"right-to-left mark U+200F":      "a\u200fb",
	"arabic letter mark U+061C":      "a\u061cb",
	"zero width space U+200B":        "a\u200bb",
	"zero width joiner U+200D":       "a\u200db",
	"byte order mark U+FEFF":         "\ufeffabc",
	"soft hyphen U+00AD":             "a\u00adb",
	"line separator U+2028":          "a\u2028b",
	"newline":                        "a\nb",
	"tab":                            "a\tb",
	"NUL":                            "a\x00b",
	"DEL":                            "a\x7fb",
	"C1 control U+0085":              "a\u0085b",
	"private use U+E000":             "a\ue000b",
	"invalid UTF-8":                  "a\xffb",
	"truncated UTF-8":                "a\xe2\x80",
	"replacement character U+FFFD":   "a\ufffdb",
}

var acceptedText = []string{
	"order-123",
	"Bestellung Nr. 5 / Größe L",
	"注文-42",
	"طلب ٤٢", // right-to-left letters are letters; only the invisible controls go
	"party 🎉 #7",
	"a_b.c:d@e+f=g~h",
	strings.Repeat("é", 200), // characters, not bytes
}

func TestValidateText(t *testing.T) {
	for what, s := range refusedText {
		err := ValidateText("order_id", s, 200)
		if !errors.Is(err, ErrValidation) {
			t.Errorf("%s (%q): %v, want ErrValidation", what, s, err)
			continue
		}
		// The message says what is allowed, names the field and does not
		// echo the invisible character back.
		msg := err.Error()
		for _, want := range []string{"order_id", "letters", "digits", "punctuation", "symbols", "spaces"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: message %q does not mention %q", what, msg, want)
			}
		}
		if strings.ContainsAny(msg, "\u202e\ufffd\x00") {
			t.Errorf("%s: message %q repeats the character", what, msg)
		}
	}
	if err := ValidateText("order_id", "a\u202eb", 200); err == nil || !strings.Contains(err.Error(), "U+202E") {
		t.Errorf("the message names the code point: %v", err)
	}
	for _, s := range acceptedText {
		if err := ValidateText("order_id", s, 200); err != nil {
			t.Errorf("%q refused: %v", s, err)
		}
	}
	if err := ValidateText("order_id", strings.Repeat("é", 201), 200); !errors.Is(err, ErrValidation) {
		t.Errorf("201 characters: %v", err)
	}
}

// Both fields go through ValidateText, so both refuse every case above.
func TestOrderIDAndNameRefuseInvisibleCharacters(t *testing.T) {
	assets := DefaultAssets()
	btc, _ := assets.Lookup("BTC")
	base := NewInvoice{InvoiceID: "inv_1", MerchantID: "mer_1", Asset: btc, Amount: MustAmount("1"), PayAmount: MustAmount("1"), PayAddress: "bc1q"}
	for what, s := range refusedText {
		n := base
		n.OrderID = s
		if _, err := CreateInvoice(n, assets, t0); !errors.Is(err, ErrValidation) || !strings.Contains(err.Error(), "order_id") {
			t.Errorf("order_id with %s: %v, want ErrValidation about order_id", what, err)
		}
		if _, err := RegisterMerchant("mer_1", "Shop "+s+" x", "", MerchantKeys{}, time.Time{}); !errors.Is(err, ErrValidation) ||
			!strings.Contains(err.Error(), "name") {
			t.Errorf("name with %s: %v, want ErrValidation about name", what, err)
		}
	}
	for _, s := range acceptedText {
		n := base
		n.OrderID = s
		if ev, err := CreateInvoice(n, assets, t0); err != nil || ev.OrderID != s {
			t.Errorf("order_id %q: %v", s, err)
		}
		if ev, err := RegisterMerchant("mer_1", s, "", MerchantKeys{}, time.Time{}); err != nil || ev.Name != s {
			t.Errorf("name %q: %v", s, err)
		}
	}
}
