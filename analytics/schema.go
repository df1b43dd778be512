// Package analytics takes the event log to where analysts work: the
// published event contract (a JSON Schema per event type and version,
// docs/events/), the record every outlet writes (the event with its type
// and schema version), the operator's export of the whole log, and the
// sink to NATS JetStream.
package analytics

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/domain"
)

// SchemaFile names the schema of a type's version in docs/events.
func SchemaFile(eventType string, version int) string {
	return fmt.Sprintf("%s.v%d.json", eventType, version)
}

// SchemaID is the $id of a type's version.
func SchemaID(eventType string, version int) string {
	return fmt.Sprintf("urn:acceptcryptohere:event:%s:v%d", eventType, version)
}

// Schemas generates the JSON Schema of every event type at the version
// this build writes, from its Go type, by file name. Older versions'
// schemas are not generated: their files stay as published.
func Schemas(s *domain.Schemas) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, t := range s.Types() {
		gt := s.GoType(t)
		if gt == nil {
			return nil, fmt.Errorf("analytics: %s has no Go type", t)
		}
		v := s.Current(t)
		sch := objectSchema(gt)
		sch["$schema"] = "https://json-schema.org/draft/2020-12/schema"
		sch["$id"] = SchemaID(t, v)
		sch["title"] = fmt.Sprintf("%s, schema version %d", t, v)
		sch["description"] = fmt.Sprintf("The body (data) of a %s event at schema version %d, as the feeds and the stream sink publish it "+
			"(without %s). Generated from domain.%s; see docs/events/README.md.", t, v, strings.Join(domain.SecretFields, ", "), gt.Name())
		raw, err := json.MarshalIndent(sch, "", "  ")
		if err != nil {
			return nil, err
		}
		out[SchemaFile(t, v)] = append(raw, '\n')
	}
	return out, nil
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	amountType  = reflect.TypeFor[domain.Amount]()
	decimalType = reflect.TypeFor[decimal.Decimal]() // rates: a JSON string
	marshaler   = reflect.TypeFor[json.Marshaler]()
)

// objectSchema describes a struct as encoding/json writes it: exported
// fields under their json names, embedded structs' fields inline, omitempty
// fields optional, the secret fields left out.
func objectSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" || (!f.IsExported() && !f.Anonymous) {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if name == "" {
				name = f.Name
			}
			if slices.Contains(domain.SecretFields, name) {
				continue
			}
			props[name] = typeSchema(f.Type)
			if !strings.Contains(opts, "omitempty") {
				required = append(required, name)
			}
		}
	}
	walk(t)
	sch := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		slices.Sort(required)
		sch["required"] = required
	}
	return sch
}

func typeSchema(t reflect.Type) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case amountType:
		return map[string]any{"type": "string", "pattern": `^-?[0-9]+(\.[0-9]+)?$`, "description": "a decimal amount in the asset's unit"}
	case decimalType:
		return map[string]any{"type": "string", "pattern": `^-?[0-9]+(\.[0-9]+)?$`, "description": "a decimal number"}
	}
	if t.Kind() != reflect.Pointer && (t.Implements(marshaler) || reflect.PointerTo(t).Implements(marshaler)) {
		// Its JSON is its own: describe it above before it is published.
		panic(fmt.Sprintf("analytics: no JSON Schema for %s, which encodes itself", t))
	}
	switch t.Kind() {
	case reflect.Pointer:
		inner := typeSchema(t.Elem())
		return map[string]any{"anyOf": []any{inner, map[string]any{"type": "null"}}}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Slice, reflect.Array:
		// A nil slice encodes as null.
		return map[string]any{"type": []string{"array", "null"}, "items": typeSchema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": []string{"object", "null"}, "additionalProperties": typeSchema(t.Elem())}
	case reflect.Struct:
		return objectSchema(t)
	}
	// Floats never carry money here, and interfaces are not in events:
	// a new kind must be described before it is published.
	panic(fmt.Sprintf("analytics: no JSON Schema for %s", t))
}
