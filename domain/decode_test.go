package domain

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestBodiesDecodeAsEncodingJSON: decode (the JSON v2 engine) reads every
// registered type's body, as encoding/json writes it, into the value
// encoding/json reads from it; and a body that is not JSON, or that
// repeats a name, is an error.
func TestBodiesDecodeAsEncodingJSON(t *testing.T) {
	amount, err := ParseAmount("1234.000000000000000001", 18)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range DefaultSchemas.Types() {
		goType := DefaultSchemas.GoType(typ)
		if goType == nil {
			continue
		}
		v := reflect.New(goType)
		fillForJSON(v.Elem(), amount.Neg(), 0)
		body, err := json.Marshal(v.Interface())
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		// Unknown names are ignored by both, and null leaves a field zero.
		body = append([]byte(`{"not_a_field":[1,{"a":null}],`), body[1:]...)
		want := reflect.New(goType)
		if err := json.Unmarshal(body, want.Interface()); err != nil {
			t.Fatalf("%s: encoding/json: %v", typ, err)
		}
		got, err := Decode(typ, body)
		if err != nil {
			t.Fatalf("%s: decode %s: %v", typ, body, err)
		}
		if !reflect.DeepEqual(got, want.Elem().Interface()) {
			t.Errorf("%s decodes differently:\n got %+v\nwant %+v\nfrom %s", typ, got, want.Elem().Interface(), body)
		}
		if reflect.DeepEqual(got, reflect.Zero(goType).Interface()) {
			t.Errorf("%s: the filled body decoded to the zero value", typ)
		}
	}
	for _, bad := range []string{`{"invoice_id":`, `{"invoice_id":"a","invoice_id":"b"}`, "{\"invoice_id\":\"\xff\"}", `[]`} {
		if _, err := Decode(TypeInvoicePaid, []byte(bad)); err == nil {
			t.Errorf("decoded %q", bad)
		}
	}
}

// fillForJSON sets every exported field of v to a value that is not zero
// (strings with characters JSON escapes).
func fillForJSON(v reflect.Value, amount Amount, depth int) {
	if depth > 6 || !v.CanSet() {
		return
	}
	switch v.Type() {
	case reflect.TypeFor[Amount]():
		v.Set(reflect.ValueOf(amount))
		return
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 12, 5, 7, 8, 9, 123456789, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x\"é<\u2028")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(-7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fillForJSON(s.Index(i), amount, depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillForJSON(k, amount, depth+1)
		fillForJSON(e, amount, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillForJSON(p.Elem(), amount, depth+1)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			fillForJSON(v.Field(i), amount, depth+1)
		}
	}
}

// BenchmarkDecode decodes one filled body of every registered type, with
// encoding/json and with decode.
func BenchmarkDecode(b *testing.B) {
	amount, _ := ParseAmount("0.000123", 18)
	type body struct {
		typ  string
		data []byte
	}
	var bodies []body
	for _, typ := range DefaultSchemas.Types() {
		if goType := DefaultSchemas.GoType(typ); goType != nil {
			v := reflect.New(goType)
			fillForJSON(v.Elem(), amount, 0)
			data, err := json.Marshal(v.Interface())
			if err != nil {
				b.Fatal(err)
			}
			bodies = append(bodies, body{typ, data})
		}
	}
	b.Run("engine=encoding-json", func(b *testing.B) {
		for range b.N {
			for _, x := range bodies {
				if err := json.Unmarshal(x.data, reflect.New(DefaultSchemas.GoType(x.typ)).Interface()); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*len(bodies))/b.Elapsed().Seconds(), "bodies/s")
	})
	b.Run("engine=decode", func(b *testing.B) {
		for range b.N {
			for _, x := range bodies {
				if _, err := Decode(x.typ, x.data); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*len(bodies))/b.Elapsed().Seconds(), "bodies/s")
	})
}
