package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"github.com/acceptcryptohere/gateway/domain"
)

// writeJSON renders v with status. Encoding our own response types cannot
// fail; if it did, that is a bug, and the client gets a 500.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal_error","message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// decodeJSON reads the request body into v strictly: one JSON object, no
// unknown fields, no key twice in any object, no null except in fields
// whose type clears a setting on null (nullableString), nothing after it.
// An empty body is an error unless optional. Errors are *apiError or
// domain.ErrInvalidAmount (an amount sent as a JSON number).
func decodeJSON(r *http.Request, v any, optional bool) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errTooLarge
		}
		return errorf(http.StatusBadRequest, "invalid_json", "could not read the request body")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if optional {
			return nil
		}
		return errorf(http.StatusBadRequest, "invalid_json", "the request body is empty; send a JSON object")
	}
	// encoding/json lets the last of two equal keys win and leaves a field
	// untouched on null (a nil amount means "the whole balance"), so the
	// body is checked for both before it is decoded.
	nullKeys, err := scanBody(data)
	if err != nil {
		return err
	}
	if err := rejectNulls(nullKeys, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	return nil
}

// scanBody walks the body's tokens once: it must be one JSON object and
// nothing after it, and no object at any depth may repeat a key. It returns
// the top-level keys whose value is null.
func scanBody(data []byte) (nullKeys []string, err error) {
	invalid := errorf(http.StatusBadRequest, "invalid_json", "the request body is not valid JSON")
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are only skipped here; no float conversion to fail
	tok, err := dec.Token()
	if err != nil {
		return nil, invalid
	}
	if tok != json.Delim('{') {
		return nil, errorf(http.StatusBadRequest, "invalid_json", "the request body must be a JSON object")
	}
	// One frame per open object or array; keys is nil for an array.
	type frame struct {
		keys     map[string]bool // folded keys seen so far
		key      string          // the key whose value comes next
		afterKey bool
		// exact: the object is a map of the merchant's own keys
		// (metadata), where "a" and "A" are two keys, not one field
		// sent twice; its values must not be null either.
		exact bool
	}
	stack := []frame{{keys: map[string]bool{}}}
	for len(stack) > 0 {
		if tok, err = dec.Token(); err != nil {
			return nil, invalid
		}
		top := &stack[len(stack)-1]
		if top.keys != nil && !top.afterKey {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				continue
			}
			key, _ := tok.(string) // the decoder allows only strings here
			folded := foldKey(key)
			if top.exact {
				folded = key
			}
			if top.keys[folded] {
				return nil, errorf(http.StatusBadRequest, "invalid_json", "duplicate key "+quoteKey(key)+" in the request body; send each key once (keys match ignoring case)")
			}
			top.keys[folded] = true
			top.key, top.afterKey = key, true
			continue
		}
		top.afterKey = false
		switch tok {
		case json.Delim('{'):
			exact := len(stack) == 1 && exactKeyFields[foldKey(top.key)]
			stack = append(stack, frame{keys: map[string]bool{}, exact: exact})
		case json.Delim('['):
			stack = append(stack, frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		case nil:
			if len(stack) == 1 {
				nullKeys = append(nullKeys, top.key)
			}
			if top.exact {
				return nil, errorf(http.StatusBadRequest, "validation_error", "metadata values must be strings, not null")
			}
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errorf(http.StatusBadRequest, "invalid_json", "the request body has data after the JSON object")
	}
	return nullKeys, nil
}

// exactKeyFields are the top-level fields (folded) whose object value is a
// map of the merchant's own keys, compared exactly rather than ignoring case.
var exactKeyFields = map[string]bool{foldKey("metadata"): true}

// foldKey maps the keys encoding/json would match to the same struct field
// (it compares names as bytes.EqualFold does) to one string, so "asset"
// and "ASSET" count as the same key.
func foldKey(k string) string {
	return strings.Map(func(r rune) rune {
		for {
			next := unicode.SimpleFold(r)
			if next <= r {
				return next // the smallest rune of its fold orbit
			}
			r = next
		}
	}, k)
}

// quoteKey renders a client's key for an error message, cut short.
func quoteKey(k string) string {
	const max = 64
	if r := []rune(k); len(r) > max {
		k = string(r[:max]) + "…"
	}
	return strconv.Quote(k)
}

// clearsOnNull marks the field types where null has a meaning (clearing a
// setting); a null for any other field is a 400 instead of "left out".
type clearsOnNull interface{ clearsOnNull() }

var clearsOnNullType = reflect.TypeFor[clearsOnNull]()

// rejectNulls refuses a null sent for a field of v (a pointer to a struct)
// that does not clear on null, matching keys to fields as encoding/json
// does. Keys matching no field are left to the decoder: unknown fields.
func rejectNulls(nullKeys []string, v any) error {
	if len(nullKeys) == 0 {
		return nil
	}
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	for _, key := range nullKeys {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" {
				name = f.Name
			}
			if !f.IsExported() || name == "-" || !strings.EqualFold(name, key) {
				continue
			}
			if reflect.PointerTo(f.Type).Implements(clearsOnNullType) {
				break
			}
			return errorf(http.StatusBadRequest, "validation_error", "field "+name+" must not be null; leave an optional field out instead")
		}
	}
	return nil
}

// jsonError turns a decoding error into the client's error. Field-level
// messages name the field, never echo values back.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, domain.ErrInvalidAmount):
		return err
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "invalid_json", "the request body is not valid JSON")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errorf(http.StatusBadRequest, "invalid_json", "the request body must be a JSON object")
		}
		return errorf(http.StatusBadRequest, "validation_error", fmt.Sprintf("field %s must be a JSON %s", typ.Field, jsonKind(typ.Type.Kind().String())))
	}
	// encoding/json reports unknown fields only as text.
	if msg := err.Error(); len(msg) > 20 && msg[:20] == "json: unknown field " {
		return errorf(http.StatusBadRequest, "validation_error", "unknown field "+msg[20:])
	}
	return errorf(http.StatusBadRequest, "invalid_json", "the request body is not valid JSON")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "int", "int32", "int64":
		return "integer"
	case "bool":
		return "boolean"
	}
	return "value of another type"
}

// amountString is an amount as the API accepts it: a JSON string. A JSON
// number is rejected (ErrInvalidAmount) instead of converted, because
// JSON numbers become floats in most clients and money must not.
type amountString string

func (a *amountString) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '"' {
		return fmt.Errorf("%w: amounts are decimal strings such as \"49.99\", not JSON numbers", domain.ErrInvalidAmount)
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*a = amountString(s)
	return nil
}

// nullableString tells an absent field (Set false) from null or a value,
// for PATCH bodies where null clears a setting and absence keeps it.
type nullableString struct {
	Set   bool
	Value string // "" for null
}

func (*nullableString) clearsOnNull() {}

func (n *nullableString) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = ""
		return nil
	}
	if err := json.Unmarshal(b, &n.Value); err != nil {
		return errorf(http.StatusBadRequest, "validation_error", "settings that can be cleared take a JSON string or null")
	}
	return nil
}

func (n nullableString) ptr() *string {
	if !n.Set {
		return nil
	}
	v := n.Value
	return &v
}

// nullable renders "" as JSON null.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
