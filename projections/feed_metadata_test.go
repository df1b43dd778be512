package projections

import (
	"encoding/json"
	"testing"
)

// The fast read of a metadata's merchant_id agrees with encoding/json on
// every object it accepts; what it declines goes to encoding/json itself.
func FuzzFlatStringField(f *testing.F) {
	for _, s := range []string{
		`{"command_id":"c1","merchant_id":"mer_1","occurred_at":"2026-12-04T17:00:00Z"}`,
		`{"command_id":"c1","occurred_at":"2026-12-04T17:00:00Z","schema_version":2}`,
		`{"merchant_id":"a","merchant_id":"b"}`,
		`{"Merchant_ID":"a"}`,
		`{"merchant_id":"a\"b"}`,
		`{"merchant_id":1}`,
		`{"merchant_id":null}`,
		`{"x":{"merchant_id":"a"}}`,
		`{"x":tru,"merchant_id":"a"}`,
		`{"x":1e5,"merchant_id":"a"}`,
		`{}`, `{"a":1}`, `{"a":1} `, `{"a":1}}`, `{"a":1,}`, `{`, `"x"`, `null`,
		"{\"merchant_id\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, obj []byte) {
		got, ok := flatStringField(obj, "merchant_id")
		if !ok {
			return
		}
		var m struct {
			MerchantID string `json:"merchant_id"`
		}
		if err := json.Unmarshal(obj, &m); err != nil {
			t.Fatalf("%q: accepted as %q, encoding/json: %v", obj, got, err)
		}
		if got != m.MerchantID {
			t.Fatalf("%q: %q, encoding/json %q", obj, got, m.MerchantID)
		}
	})
}

func TestFlatStringFieldReadsOurMetadata(t *testing.T) {
	id, ok := flatStringField([]byte(`{"command_id":"c1","merchant_id":"mer_1","occurred_at":"2026-12-04T17:00:00Z"}`), "merchant_id")
	if !ok || id != "mer_1" {
		t.Fatalf("%q %v", id, ok)
	}
	if id, ok := flatStringField([]byte(`{"command_id":"c1","occurred_at":"2026-12-04T17:00:00Z"}`), "merchant_id"); !ok || id != "" {
		t.Fatalf("%q %v", id, ok)
	}
}
