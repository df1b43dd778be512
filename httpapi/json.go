package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

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

// decodeJSON reads the request body into v strictly: one JSON value, no
// unknown fields, nothing after it. An empty body is an error unless
// optional. Errors are *apiError or domain.ErrInvalidAmount (an amount sent
// as a JSON number).
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
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, "invalid_json", "the request body has data after the JSON object")
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
