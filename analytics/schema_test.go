package analytics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

var update = flag.Bool("update", false, "write the generated schemas to docs/events")

const eventsDir = "../docs/events"

// The committed contract is the one the Go types give: a change of an
// event's shape shows up here, and must come with a new version (and its
// upcaster) rather than a silent edit of a published schema.
func TestSchemasAreGenerated(t *testing.T) {
	gen, err := Schemas(domain.DefaultSchemas)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		for name, raw := range gen {
			if err := os.WriteFile(filepath.Join(eventsDir, name), raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, raw := range gen {
		got, err := os.ReadFile(filepath.Join(eventsDir, name))
		if err != nil {
			t.Errorf("%s: %v (go test ./analytics -run TestSchemasAreGenerated -update writes it)", name, err)
			continue
		}
		if !bytes.Equal(got, raw) {
			t.Errorf("docs/events/%s differs from the schema generated from the Go type: a shape change needs a new version and its upcaster (domain/versions.go); then -update", name)
		}
	}
	// Every published file is a type's version: the current one generated
	// above, or an older one kept as it was published.
	files, _ := filepath.Glob(filepath.Join(eventsDir, "*.v*.json"))
	for _, f := range files {
		name := filepath.Base(f)
		if _, ok := gen[name]; ok {
			continue
		}
		typ, ver, _ := strings.Cut(strings.TrimSuffix(name, ".json"), ".v")
		v, err := strconv.Atoi(ver)
		if cur := domain.DefaultSchemas.Current(typ); cur == 0 || err != nil || v < 1 || v >= cur {
			t.Errorf("docs/events/%s is not a version of a known type below its current one", name)
		}
	}
}

// compile loads every schema of docs/events into an independent validator.
func compile(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	files, err := filepath.Glob(filepath.Join(eventsDir, "*.v*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no schemas in %s: %v", eventsDir, err)
	}
	ids := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		id := doc.(map[string]any)["$id"].(string)
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
		ids[filepath.Base(f)] = id
	}
	out := map[string]*jsonschema.Schema{}
	for name, id := range ids {
		s, err := c.Compile(id)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[id] = s
	}
	return out
}

func validate(s *jsonschema.Schema, data []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// Every event of the replay fixture (a log of every type written by a
// release) validates, as published, against the schema its record names.
func TestSampleEventsValidate(t *testing.T) {
	schemas := compile(t)
	f, err := os.Open("../simulation/testdata/log-v1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	types := map[string]bool{}
	n := 0
	for sc.Scan() {
		var e struct {
			ID         string          `json:"id"`
			Stream     string          `json:"stream"`
			Version    int64           `json:"version"`
			Type       string          `json:"type"`
			Data       json.RawMessage `json:"data"`
			Metadata   json.RawMessage `json:"metadata"`
			RecordedAt int64           `json:"recorded_at_us"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		r, err := NewRecord(eventstore.RecordedEvent{ID: e.ID, Stream: e.Stream, Version: e.Version, Type: e.Type, Data: e.Data,
			Metadata: e.Metadata, RecordedAt: time.UnixMicro(e.RecordedAt), Position: eventstore.Position{Commit: uint64(n + 1)}})
		if err != nil {
			t.Fatal(err)
		}
		s := schemas[r.Schema]
		if s == nil {
			t.Fatalf("event %s names schema %s, which docs/events does not have", e.ID, r.Schema)
		}
		if err := validate(s, r.Data); err != nil {
			t.Errorf("event %s (%s v%d) does not validate: %v", e.ID, e.Type, r.SchemaVersion, err)
		}
		for _, secret := range domain.SecretFields {
			if bytes.Contains(r.Data, []byte(`"`+secret+`"`)) {
				t.Errorf("event %s publishes %s", e.ID, secret)
			}
		}
		types[e.Type] = true
		n++
	}
	// The fixture is a past release's log: a type added since is not in
	// it. Each type's zero body (as its Go type encodes it) validates too.
	for _, typ := range domain.DefaultSchemas.Types() {
		v := domain.DefaultSchemas.Current(typ)
		zero, err := json.Marshal(reflect.New(domain.DefaultSchemas.GoType(typ)).Elem().Interface())
		if err != nil {
			t.Fatal(err)
		}
		if pub, _ := domain.PublishedData(zero); validate(schemas[SchemaID(typ, v)], pub) != nil {
			t.Errorf("%s: the zero body %s does not validate: %v", typ, pub, validate(schemas[SchemaID(typ, v)], pub))
		}
		if !types[typ] {
			t.Logf("%s is not in the fixture (a type newer than its release): checked on its zero body only", typ)
		}
	}
	t.Logf("%d sample events of %d types validate", n, len(types))
}

// The schemas hold: a body with a field missing, a field of the wrong
// type, an amount that is not a decimal, or an unknown field, is refused.
func TestSchemasRefuseOtherShapes(t *testing.T) {
	schemas := compile(t)
	s := schemas[SchemaID(domain.TypeDepositConfirmed, domain.SchemaVersionOf(domain.TypeDepositConfirmed))]
	good, err := domain.Encode(domain.DepositConfirmed{InvoiceID: "inv_1", MerchantID: "mer_1", DepositID: "d", Asset: "BTC",
		Amount: domain.MustAmount("0.01"), Charged: domain.MustAmount("0.000025"), Net: domain.MustAmount("0.009975"),
		ConfirmedAt: time.Unix(1, 0).UTC(), Postings: []domain.Posting{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(s, good); err != nil {
		t.Fatalf("a DepositConfirmed body is refused: %v", err)
	}
	var m map[string]any
	_ = json.Unmarshal(good, &m)
	for name, change := range map[string]func(map[string]any){
		"missing field":  func(m map[string]any) { delete(m, "net") },
		"wrong type":     func(m map[string]any) { m["confirmations"] = "six" },
		"not a decimal":  func(m map[string]any) { m["amount"] = "1e-2" },
		"unknown field":  func(m map[string]any) { m["fee_amount"] = "0.1" },
		"not a date":     func(m map[string]any) { m["confirmed_at"] = "yesterday" },
		"posting shaped": func(m map[string]any) { m["postings"] = []any{map[string]any{"account": 1}} },
	} {
		c := map[string]any{}
		for k, v := range m {
			c[k] = v
		}
		change(c)
		raw, _ := json.Marshal(c)
		if validate(s, raw) == nil {
			t.Errorf("%s: accepted %s", name, raw)
		}
	}
}
