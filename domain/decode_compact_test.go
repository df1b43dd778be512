package domain

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"
)

// compactPair is a type's compact decoder beside the JSON v2 engine's.
type compactPair struct {
	compact func([]byte) (Event, bool)
	engine  func([]byte) (Event, error)
}

func pairOf[T Event](compact func([]byte) (T, bool)) compactPair {
	return compactPair{
		compact: func(b []byte) (Event, bool) { e, ok := compact(b); return e, ok },
		engine:  decode[T],
	}
}

var compactPairs = map[string]compactPair{
	TypeInvoiceCreated:   pairOf(compactInvoiceCreated),
	TypeDepositDetected:  pairOf(compactDepositDetected),
	TypeDepositConfirmed: pairOf(compactDepositConfirmed),
	TypeDepositFinalized: pairOf(compactDepositFinalized),
	TypeInvoicePaid:      pairOf(compactInvoiceStatusChanged),
}

// compactSample is a body of type typ; plain says the compact decoder
// must read it itself.
type compactSample struct {
	typ   string
	body  []byte
	plain bool
}

// compactSamples are bodies as the gateway writes them, and some it
// writes rarely (omitted fields, zero values, details and a price, which
// the compact decoder leaves to the engine).
func compactSamples(t testing.TB) []compactSample {
	amt := func(s string) Amount {
		a, err := ParseAmount(s, 18)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	at := time.Date(2024, 12, 2, 21, 3, 19, 666944000, time.UTC)
	mer := "mer_01jdzr8p007ypxpb8ave33hzbd"
	postings := []Posting{{Account: "external", Asset: "USDT.ETH", Amount: amt("44.23").Neg()},
		{Account: PendingAccount(mer), Asset: "USDT.ETH", Amount: amt("44.23")}}
	fee := FeeCalc{Base: amt("460.48"), Bps: 25, Decimals: 6, Rounding: "half_up", Fee: amt("1.1512")}
	created := InvoiceCreated{InvoiceID: "inv_01je4jym3jjpx4r6qs40w1rckc", MerchantID: mer, Asset: "USDT.ETH", Decimals: 6,
		Amount: amt("460.48"), PayAmount: amt("460.48"), PayAddress: "0x0b52c0b732918f24aa500df8c88e32b7eb78e139", AddressIndex: -1,
		RequiredConfirmations: 12, Finality: 64, OrderID: "order-39-0", Fee: fee, CreatedAt: at, ExpiresAt: at.Add(time.Hour),
		CreatedBy: CreatedBySecretKey}
	converted := created
	converted.SettleAsset, converted.ConvertTo, converted.Description, converted.RedirectURL = "BTC", "BTC", "Two mugs", "https://shop.example/thanks?o=1"
	converted.AddressIndex, converted.CreatedAt = 7, at.Truncate(time.Second)
	detailed := created
	detailed.Metadata = map[string]string{"sku": "a-1"}
	priced := created
	priced.Price = &InvoicePrice{Currency: "EUR", Amount: amt("440"), Source: "fixed", RateAt: at}
	unicode := created
	unicode.Description = "Zwei Tassen für Ü"
	var out []compactSample
	add := func(typ string, e any, plain bool) {
		body, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, compactSample{typ, body, plain})
	}
	add(TypeInvoiceCreated, created, true)
	add(TypeInvoiceCreated, converted, true)
	add(TypeInvoiceCreated, detailed, false)
	add(TypeInvoiceCreated, priced, false)
	add(TypeInvoiceCreated, unicode, false)
	add(TypeDepositDetected, DepositDetected{InvoiceID: created.InvoiceID, MerchantID: mer, DepositID: "0xe2d7:0", TxID: "0xe2d7",
		Asset: "USDT.ETH", Amount: amt("44.23"), Confirmations: 1, Late: true, DetectedAt: at, Postings: postings}, true)
	add(TypeDepositDetected, DepositDetected{InvoiceID: created.InvoiceID, Postings: []Posting{}}, true)
	add(TypeDepositConfirmed, DepositConfirmed{InvoiceID: created.InvoiceID, MerchantID: mer, DepositID: "0xe2d7:0", Asset: "USDT.ETH",
		Amount: amt("44.23"), Confirmations: 12, Fee: fee, FeeBefore: amt("0"), Charged: amt("0.110575"), Net: amt("44.119425"),
		ConvertTo: "BTC", ConfirmedAt: at, Postings: postings}, true)
	add(TypeDepositFinalized, DepositFinalized{InvoiceID: created.InvoiceID, MerchantID: mer, DepositID: "bc1q:3", Asset: "BTC",
		Net: amt("0.00012345"), Depth: 6, Round: 2, FinalizedAt: at, Postings: postings[:1]}, true)
	add(TypeInvoicePaid, InvoiceStatusChanged{InvoiceID: created.InvoiceID, MerchantID: mer, From: StatusConfirming, To: StatusPaid,
		AmountReceived: amt("189.68"), At: at}, true)
	// Zero values: the year-one times are plain; null postings are not.
	add(TypeInvoicePaid, InvoiceStatusChanged{}, true)
	add(TypeDepositFinalized, DepositFinalized{}, false)
	return out
}

// TestCompactDecodersAgree: the compact decoders read the bodies the
// gateway writes, to what the JSON v2 engine reads; and on every body
// made from those by deleting, doubling or replacing one byte, or by
// repeating a member, a compact decoder either declines or agrees with the
// engine, which then accepts the body too.
func TestCompactDecodersAgree(t *testing.T) {
	checked, accepted := 0, 0
	for _, s := range compactSamples(t) {
		pair := compactPairs[s.typ]
		got, ok := pair.compact(s.body)
		if ok != s.plain {
			t.Errorf("%s: the compact decoder read it: %v, want %v\n%s", s.typ, ok, s.plain, s.body)
		}
		if ok {
			checkCompactAgrees(t, s.typ, s.body, got)
		}
		full, err := DefaultSchemas.Decode(s.typ, 1, s.body)
		want, werr := pair.engine(s.body)
		if err != nil || werr != nil || !reflect.DeepEqual(full, want) {
			t.Errorf("%s: DefaultSchemas decodes %+v (%v), the engine %+v (%v)", s.typ, full, err, want, werr)
		}
		for _, m := range mutations(s.body) {
			checked++
			if got, ok := pair.compact(m); ok {
				accepted++
				checkCompactAgrees(t, s.typ, m, got)
			}
		}
	}
	if accepted == 0 || accepted == checked {
		t.Fatalf("the compact decoders read %d of %d changed bodies: the changes test nothing", accepted, checked)
	}
	t.Logf("%d changed bodies: the compact decoders read %d and declined the rest", checked, accepted)
}

func checkCompactAgrees(t testing.TB, typ string, body []byte, got Event) {
	t.Helper()
	want, err := compactPairs[typ].engine(body)
	if err != nil {
		t.Fatalf("%s: the compact decoder read a body the engine refuses (%v):\n%s", typ, err, body)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: the compact decoder read\n %+v\nthe engine\n %+v\nfrom %s", typ, got, want, body)
	}
}

// mutations are body with one byte deleted, doubled or replaced, or with
// its first member repeated.
func mutations(body []byte) [][]byte {
	var out [][]byte
	for i := range body {
		out = append(out, slices.Delete(slices.Clone(body), i, i+1), slices.Insert(slices.Clone(body), i, body[i]))
		for _, c := range []byte{' ', '"', '\\', ',', ':', '}', ']', '{', '[', '0', '9', '-', '.', 'e', 'x', 'n', 0x7f, 0xc3, 0xff, 0} {
			m := slices.Clone(body)
			m[i] = c
			out = append(out, m)
		}
	}
	if end := slices.Index(body, ','); end > 0 {
		out = append(out, slices.Concat(body[:end+1], body[1:]))
	}
	return out
}

// FuzzCompactDecoders: whatever a compact decoder reads, the engine reads
// the same. go test ./domain -fuzz FuzzCompactDecoders explores further.
func FuzzCompactDecoders(f *testing.F) {
	types := []string{TypeInvoiceCreated, TypeDepositDetected, TypeDepositConfirmed, TypeDepositFinalized, TypeInvoicePaid}
	for _, s := range compactSamples(f) {
		f.Add(uint8(slices.Index(types, s.typ)), s.body)
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		typ := types[int(which)%len(types)]
		if got, ok := compactPairs[typ].compact(body); ok {
			checkCompactAgrees(t, typ, body, got)
		}
	})
}

// BenchmarkCompactDecoders decodes the plain samples with the compact
// decoders and with the engine.
func BenchmarkCompactDecoders(b *testing.B) {
	var samples []compactSample
	for _, s := range compactSamples(b) {
		if s.plain {
			samples = append(samples, s)
		}
	}
	for _, engine := range []bool{false, true} {
		name := "decoder=compact"
		if engine {
			name = "decoder=engine"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				for _, s := range samples {
					pair := compactPairs[s.typ]
					if engine {
						if _, err := pair.engine(s.body); err != nil {
							b.Fatal(err)
						}
					} else if _, ok := pair.compact(s.body); !ok {
						b.Fatal("declined")
					}
				}
			}
			b.ReportMetric(float64(b.N*len(samples))/b.Elapsed().Seconds(), "bodies/s")
		})
	}
}
