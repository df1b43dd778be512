package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestAccountBranding (issue #19): PATCH /v1/account display_name,
// logo_url (https), brand_color (#rrggbb), default_redirect_url (https);
// GET /v1/account shows them; null clears; absent keeps.
func TestAccountBranding(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	tests := []struct {
		name, body string
		wantStatus int
		wantCode   string
	}{
		{"all four", `{"display_name":"Café Olé","logo_url":"https://cdn.shop.example/logo.png","brand_color":"#1A2b3c","default_redirect_url":"https://shop.example/done"}`, 200, ""},
		{"display_name too long", `{"display_name":"` + strings.Repeat("x", 201) + `"}`, 400, "validation_error"},
		{"display_name bidi", `{"display_name":"a\u202eb"}`, 400, "validation_error"},
		{"logo http", `{"logo_url":"http://cdn.shop.example/logo.png"}`, 400, "validation_error"},
		{"logo data", `{"logo_url":"data:image/png;base64,AAAA"}`, 400, "validation_error"},
		{"logo javascript", `{"logo_url":"javascript:alert(1)"}`, 400, "validation_error"},
		{"color short", `{"brand_color":"#abc"}`, 400, "validation_error"},
		{"color no hash", `{"brand_color":"1a2b3c"}`, 400, "validation_error"},
		{"color css", `{"brand_color":"red;background:url(x)"}`, 400, "validation_error"},
		{"color not hex", `{"brand_color":"#12345g"}`, 400, "validation_error"},
		{"redirect http", `{"default_redirect_url":"http://shop.example/"}`, 400, "validation_error"},
		{"redirect credentials", `{"default_redirect_url":"https://u:p@shop.example/"}`, 400, "validation_error"},
		{"number", `{"brand_color":5}`, 400, "validation_error"},
	}
	for _, tc := range tests {
		res := b.do(t, req{method: "PATCH", path: "/v1/account", key: m.secret, body: tc.body})
		if res.status != tc.wantStatus || (tc.wantCode != "" && res.code() != tc.wantCode) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, res.status, res.raw, tc.wantStatus, tc.wantCode)
		}
	}
	if res := b.do(t, req{method: "PATCH", path: "/v1/account", key: m.pub, body: `{"display_name":"Evil"}`}); res.status != http.StatusForbidden {
		t.Errorf("publishable: %d %s", res.status, res.raw)
	}
	want := map[string]any{"display_name": "Café Olé", "logo_url": "https://cdn.shop.example/logo.png", "brand_color": "#1a2b3c",
		"default_redirect_url": "https://shop.example/done"}
	acc := b.do(t, req{method: "GET", path: "/v1/account", key: m.secret}).json(t)
	for k, v := range want {
		if acc[k] != v {
			t.Errorf("GET %s = %v, want %v", k, acc[k], v)
		}
	}
	// Absent keeps; null clears one.
	acc = b.do(t, req{method: "PATCH", path: "/v1/account", key: m.secret, body: `{"logo_url":null}`}).json(t)
	if acc["logo_url"] != nil || acc["display_name"] != "Café Olé" || acc["brand_color"] != "#1a2b3c" {
		t.Errorf("after clearing logo_url: %v", acc)
	}
	// A fresh account has none.
	fresh := b.do(t, req{method: "GET", path: "/v1/account", key: b.signUp(t, "Other").secret}).json(t)
	for k := range want {
		if v, ok := fresh[k]; !ok || v != nil {
			t.Errorf("fresh account %s = %v (present %v), want null", k, v, ok)
		}
	}
}
