package domain

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Every type the log may hold is registered, and every version above 1 has
// its upcaster from the one before.
func TestSchemasComplete(t *testing.T) {
	all := []string{TypeMerchantRegistered, TypeAPIKeysRotated, TypeWebhookSecretRotated, TypeAccountSettingsChanged,
		TypePayoutSettingsChanged, TypeInvoiceCreated, TypeDepositDetected, TypeDepositConfirmed, TypeDepositReverted,
		TypeDepositFinalized, TypeConversionWaiting, TypeConversionAbandoned, TypePaymentConverted, TypeInvoiceReverted,
		TypeBalanceNegative, TypeInvoicePartiallyPaid, TypeInvoiceConfirming, TypeInvoicePaid, TypeInvoiceExpired,
		TypeInvoiceAwaitingPayment, TypeAddressReserved, TypeAddressIndexesReserved, TypePayoutRequested, TypePayoutSigned,
		TypePayoutSent, TypePayoutConfirmed, TypePayoutFailed, TypePayoutCanceled, TypeConversionExecuted, TypeNetworkCostPaid}
	for _, typ := range all {
		if DefaultSchemas.Current(typ) < 1 {
			t.Errorf("%s is not registered in defaultSchemas", typ)
		}
	}
	if got := len(DefaultSchemas.Types()); got != len(all) {
		t.Errorf("%d registered types, this test knows %d: add the new one here", got, len(all))
	}
	if m := DefaultSchemas.Missing(); len(m) > 0 {
		t.Errorf("versions without their upcaster: %v", m)
	}
}

func TestSchemaVersionFromMetadata(t *testing.T) {
	for meta, want := range map[string]int{
		``: 1, `{"command_id":"c"}`: 1, `{"command_id":"c","schema_version":3}`: 3, `{"schema_version":0}`: 1,
	} {
		if got, err := SchemaVersion([]byte(meta)); err != nil || got != want {
			t.Errorf("SchemaVersion(%s) = %d, %v; want %d", meta, got, err, want)
		}
	}
	if _, err := SchemaVersion([]byte(`{"schema_version":"x"}`)); err == nil {
		t.Error("a malformed version was accepted")
	}
}

// depositConfirmedV2 is a deliberate shape change of DepositConfirmed, made
// only here: version 2 renames charged and net, and nests the fee figures.
type depositConfirmedV2 struct {
	InvoiceID string `json:"invoice_id"`
	Asset     string `json:"asset"`
	Amount    Amount `json:"amount"`
	Fee       struct {
		Charged Amount `json:"charged"`
		Before  Amount `json:"before"`
	} `json:"fee_figures"`
	NetAmount Amount `json:"net_amount"`
}

func (depositConfirmedV2) EventType() string { return TypeDepositConfirmed }

// upcastDepositConfirmedV1 is that change's upcaster: it moves the
// version-1 fields to their version-2 places, keeping the rest.
func upcastDepositConfirmedV1(data []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	fee, err := json.Marshal(map[string]json.RawMessage{"charged": m["charged"], "before": m["fee_before"]})
	if err != nil {
		return nil, err
	}
	m["fee_figures"], m["net_amount"] = fee, m["net"]
	delete(m, "charged")
	delete(m, "fee_before")
	delete(m, "net")
	return json.Marshal(m)
}

// A body written at version 1 decodes to the same facts at version 2 only
// through its upcaster; without it the decode refuses (and a decoder that
// ignored versions would read a zero fee: money lost without an error).
func TestShapeChangeNeedsItsUpcaster(t *testing.T) {
	v1 := DepositConfirmed{InvoiceID: "inv_1", Asset: "BTC", Amount: MustAmount("0.01"), FeeBefore: MustAmount("0.00002"),
		Charged: MustAmount("0.000025"), Net: MustAmount("0.009975"), ConfirmedAt: time.Unix(1, 0).UTC()}
	body, err := Encode(v1)
	if err != nil {
		t.Fatal(err)
	}
	check := func(e Event) {
		t.Helper()
		got := e.(depositConfirmedV2)
		if got.Fee.Charged.String() != "0.000025" || got.Fee.Before.String() != "0.00002" || got.NetAmount.String() != "0.009975" ||
			got.Amount.String() != "0.01" || got.InvoiceID != "inv_1" {
			t.Errorf("upcast v1 = %+v", got)
		}
	}

	without := NewSchemas()
	without.Register(TypeDepositConfirmed, 2, decode[depositConfirmedV2])
	if _, err := without.Decode(TypeDepositConfirmed, 1, body); err == nil || !strings.Contains(err.Error(), "no upcaster from version 1") {
		t.Fatalf("v1 body decoded at v2 without an upcaster: err %v", err)
	}
	if m := without.Missing(); len(m) != 1 {
		t.Errorf("Missing = %v, want the v1→v2 upcaster", m)
	}
	naive, err := without.decoders[TypeDepositConfirmed](body)
	if err != nil {
		t.Fatal(err)
	}
	if naive.(depositConfirmedV2).Fee.Charged.String() == "0.000025" {
		t.Fatal("the shape change is not one: a v1 body reads right at v2 without its upcaster")
	}

	with := NewSchemas()
	with.Register(TypeDepositConfirmed, 2, decode[depositConfirmedV2])
	with.Upcast(TypeDepositConfirmed, 1, upcastDepositConfirmedV1)
	e, err := with.Decode(TypeDepositConfirmed, 1, body)
	if err != nil {
		t.Fatal(err)
	}
	check(e)
	// A body already at version 2 is not touched.
	v2body, _ := json.Marshal(e)
	e2, err := with.Decode(TypeDepositConfirmed, 2, v2body)
	if err != nil {
		t.Fatal(err)
	}
	check(e2)
	if _, err := with.Decode(TypeDepositConfirmed, 3, v2body); err == nil {
		t.Error("a body from a newer build decoded")
	}
}

// PublishedData looks for "secret" before it decodes a body: every secret
// field must be named so, or its value would be published.
func TestSecretFieldsAreFoundByTheirMarker(t *testing.T) {
	for _, f := range SecretFields {
		body := []byte(`{"a":1,"` + f + `":"x","b":2}`)
		pub, err := PublishedData(body)
		if err != nil {
			t.Fatal(err)
		}
		if string(pub) != `{"a":1,"b":2}` {
			t.Errorf("%s: published %s", f, pub)
		}
	}
	body := []byte(`{"a":1,"b":"c"}`)
	if pub, _ := PublishedData(body); string(pub) != string(body) {
		t.Errorf("a body without secrets published as %s", pub)
	}
}
