package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
)

// Event shapes are versioned per type. An event's schema version travels in
// its metadata ("schema_version"); none means 1, which is every event of
// every log written before versions existed. When a type's JSON shape
// changes in a way an old body would not decode to the same facts (a field
// renamed, split, moved, its unit or meaning changed), its version in
// defaultSchemas goes up by one and an Upcaster from the previous version
// is registered there: it rewrites an old body into the next
// version's shape. Decoding a stored event runs the upcasters from its
// version to the current one, so old logs always replay (docs/events/).
// Additions that old bodies simply lack (a field with omitempty whose zero
// value means what it meant before) need no new version.

// Upcaster rewrites one version of a type's body into the next version's.
type Upcaster func(data []byte) ([]byte, error)

// Schemas is a set of event types with their current versions, decoders
// and upcasters. The gateway's own is DefaultSchemas; tests build others
// to exercise a shape change.
type Schemas struct {
	current   map[string]int
	decoders  map[string]func([]byte) (Event, error)
	goTypes   map[string]reflect.Type
	upcasters map[string]map[int]Upcaster // type → from version → to the next
}

// NewSchemas returns an empty set.
func NewSchemas() *Schemas {
	return &Schemas{current: map[string]int{}, decoders: map[string]func([]byte) (Event, error){}, goTypes: map[string]reflect.Type{},
		upcasters: map[string]map[int]Upcaster{}}
}

// Register declares a type at its current version with its decoder.
func (s *Schemas) Register(eventType string, version int, decode func([]byte) (Event, error)) {
	if version < 1 {
		panic("domain: schema version below 1 for " + eventType)
	}
	s.current[eventType] = version
	s.decoders[eventType] = decode
}

// Upcast registers the rewrite of eventType's version from into version from+1.
func (s *Schemas) Upcast(eventType string, from int, up Upcaster) {
	if s.upcasters[eventType] == nil {
		s.upcasters[eventType] = map[int]Upcaster{}
	}
	s.upcasters[eventType][from] = up
}

// Current is the version eventType is written at (0 for an unknown type).
func (s *Schemas) Current(eventType string) int { return s.current[eventType] }

// Types lists the registered types, sorted.
func (s *Schemas) Types() []string {
	out := make([]string, 0, len(s.current))
	for t := range s.current {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Missing lists the upcasters a type needs and lacks: one from each version
// below the current one. Empty for a complete set.
func (s *Schemas) Missing() []string {
	var out []string
	for _, t := range s.Types() {
		for v := 1; v < s.current[t]; v++ {
			if s.upcasters[t][v] == nil {
				out = append(out, fmt.Sprintf("%s v%d→v%d", t, v, v+1))
			}
		}
	}
	return out
}

// Upgrade rewrites a body stored at version into the current shape.
func (s *Schemas) Upgrade(eventType string, version int, data []byte) ([]byte, error) {
	cur, ok := s.current[eventType]
	if !ok {
		return nil, fmt.Errorf("domain: unknown event type %q", eventType)
	}
	if version > cur {
		return nil, fmt.Errorf("domain: %s version %d is newer than this build's %d: upgrade the gateway", eventType, version, cur)
	}
	for v := version; v < cur; v++ {
		up := s.upcasters[eventType][v]
		if up == nil {
			return nil, fmt.Errorf("domain: %s: no upcaster from version %d to %d", eventType, v, v+1)
		}
		var err error
		if data, err = up(data); err != nil {
			return nil, fmt.Errorf("domain: %s: upcast from version %d: %w", eventType, v, err)
		}
	}
	return data, nil
}

// Decode decodes a body stored at version, upcast to the current shape.
func (s *Schemas) Decode(eventType string, version int, data []byte) (Event, error) {
	data, err := s.Upgrade(eventType, version, data)
	if err != nil {
		return nil, err
	}
	e, err := s.decoders[eventType](data)
	if err != nil {
		return nil, fmt.Errorf("domain: decode %s: %w", eventType, err)
	}
	return e, nil
}

// schemaVersionKey names the version in an event's metadata.
const schemaVersionKey = "schema_version"

var schemaVersionMarker = []byte(`"` + schemaVersionKey + `"`)

// SchemaVersion reads the schema version an event was written at from its
// metadata: 1 when the metadata does not say (every event from before
// versions, and every type still at version 1).
func SchemaVersion(metadata []byte) (int, error) {
	if !bytes.Contains(metadata, schemaVersionMarker) {
		return 1, nil
	}
	var m struct {
		V int `json:"schema_version"`
	}
	if err := json.Unmarshal(metadata, &m); err != nil {
		return 0, fmt.Errorf("domain: event metadata: %w", err)
	}
	if m.V < 1 {
		return 1, nil
	}
	return m.V, nil
}

// DefaultSchemas is the gateway's event contract: every type at the version
// this build writes.
var DefaultSchemas = defaultSchemas()

// SchemaVersionOf is the version this build writes eventType at.
func SchemaVersionOf(eventType string) int { return DefaultSchemas.Current(eventType) }

// DecodeStored decodes an event as stored (type, body, metadata), upcast
// from the version its metadata names to this build's shape. Every reader
// of the log decodes through it.
func DecodeStored(eventType string, data, metadata []byte) (Event, error) {
	v, err := SchemaVersion(metadata)
	if err != nil {
		return nil, err
	}
	return DefaultSchemas.Decode(eventType, v, data)
}

func reg[T Event](s *Schemas, eventType string, version int) {
	s.Register(eventType, version, decode[T])
	s.goTypes[eventType] = reflect.TypeFor[T]()
}

// regCompact registers a type whose bodies a compact decoder reads first
// (decode_compact.go).
func regCompact[T Event](s *Schemas, eventType string, version int, compact func([]byte) (T, bool)) {
	s.Register(eventType, version, compactOr(compact))
	s.goTypes[eventType] = reflect.TypeFor[T]()
}

// GoType is the Go type a registered type decodes into at its current
// version (nil when registered without one): docs/events is generated from it.
func (s *Schemas) GoType(eventType string) reflect.Type { return s.goTypes[eventType] }

// defaultSchemas lists every type with its current version. Raise a version
// only together with its upcaster (TestSchemasComplete).
func defaultSchemas() *Schemas {
	s := NewSchemas()
	reg[MerchantRegistered](s, TypeMerchantRegistered, 1)
	reg[APIKeysRotated](s, TypeAPIKeysRotated, 1)
	reg[WebhookSecretRotated](s, TypeWebhookSecretRotated, 1)
	reg[AccountSettingsChanged](s, TypeAccountSettingsChanged, 1)
	reg[PayoutSettingsChanged](s, TypePayoutSettingsChanged, 1)
	regCompact(s, TypeInvoiceCreated, 1, compactInvoiceCreated)
	regCompact(s, TypeDepositDetected, 1, compactDepositDetected)
	regCompact(s, TypeDepositConfirmed, 1, compactDepositConfirmed)
	reg[DepositReverted](s, TypeDepositReverted, 1)
	regCompact(s, TypeDepositFinalized, 1, compactDepositFinalized)
	reg[ConversionWaiting](s, TypeConversionWaiting, 1)
	reg[ConversionAbandoned](s, TypeConversionAbandoned, 1)
	reg[BalanceNegative](s, TypeBalanceNegative, 1)
	reg[PaymentConverted](s, TypePaymentConverted, 1)
	for _, t := range []string{TypeInvoicePartiallyPaid, TypeInvoiceConfirming, TypeInvoicePaid, TypeInvoiceExpired, TypeInvoiceAwaitingPayment, TypeInvoiceReverted} {
		regCompact(s, t, 1, compactInvoiceStatusChanged)
	}
	reg[AddressReserved](s, TypeAddressReserved, 1)
	reg[AddressIndexesReserved](s, TypeAddressIndexesReserved, 1)
	reg[PayoutRequested](s, TypePayoutRequested, 1)
	reg[PayoutSigned](s, TypePayoutSigned, 1)
	reg[PayoutSent](s, TypePayoutSent, 1)
	reg[PayoutConfirmed](s, TypePayoutConfirmed, 1)
	reg[PayoutFailed](s, TypePayoutFailed, 1)
	reg[PayoutCanceled](s, TypePayoutCanceled, 1)
	reg[ConversionExecuted](s, TypeConversionExecuted, 1)
	reg[NetworkCostPaid](s, TypeNetworkCostPaid, 1)
	return s
}

// SecretFields are event fields that never leave the event log (the feed,
// the operator feed, the stream sink, docs/events): API.md promises that
// secrets are shown once, a key hash is material for an offline guess, and a
// sealed secret opens with the gateway's secrets key.
var SecretFields = []string{"secret_key_hash", "webhook_secret", "webhook_secret_sealed"}

// PublishedData is an event body as published: without SecretFields, the
// rest byte for byte in its order.
func PublishedData(data []byte) ([]byte, error) {
	// Every secret field's name holds "secret": one search rules out most
	// bodies (three searches for `"name"` cost more, '"' being everywhere).
	if !bytes.Contains(data, secretMarker) {
		return data, nil
	}
	return withoutFields(data, SecretFields)
}

var secretMarker = []byte("secret")

// withoutFields removes the named top-level fields from a JSON object and
// keeps everything else byte for byte, in its order. Objects without them
// are returned as they are.
func withoutFields(obj []byte, fields []string) ([]byte, error) {
	found := false
	for _, f := range fields {
		if bytes.Contains(obj, []byte(`"`+f+`"`)) {
			found = true
		}
	}
	if !found {
		return obj, nil
	}
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	var out bytes.Buffer
	out.WriteByte('{')
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, err
		}
		drop := false
		for _, f := range fields {
			drop = drop || key == f
		}
		if drop {
			continue
		}
		if n > 0 {
			out.WriteByte(',')
		}
		k, _ := json.Marshal(key)
		out.Write(k)
		out.WriteByte(':')
		out.Write(val)
		n++
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the JSON object")
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}
