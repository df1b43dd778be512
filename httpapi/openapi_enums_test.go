package httpapi

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/domain"
)

// TestOpenAPIEnumsMatchGo: every enum of openapi.json's components equals
// the values the Go code has. Constants are read from the packages' source,
// so a status or code added in Go without the document fails here.
func TestOpenAPIEnumsMatchGo(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum []any `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	var assets []string
	for _, a := range domain.DefaultAssets().List() {
		assets = append(assets, a.Code)
	}
	var fiats []string
	for code := range domain.DefaultFiats() {
		fiats = append(fiats, code)
	}
	// The API shows a signed payout as requested (httpapi/payouts.go).
	payoutStatuses := slices.DeleteFunc(typedConsts(t, "../domain", "PayoutStatus"), func(s string) bool {
		return s == string(domain.PayoutSignedStatus)
	})
	want := map[string][]string{
		"AssetCode":             assets,
		"Chain":                 typedConsts(t, "../domain", "Chain"),
		"Currency":              fiats,
		"Status":                typedConsts(t, "../domain", "Status"),
		"PayoutStatus":          payoutStatuses,
		"PayoutKind":            typedConsts(t, "../domain", "PayoutKind"),
		"PayoutMode":            typedConsts(t, "../domain", "PayoutMode"),
		"CreatedBy":             typedConsts(t, "../domain", "CreatedBy"),
		"PaymentStatus":         prefixedConsts(t, "../readapi", "Payment"),
		"SettlementStatus":      prefixedConsts(t, "../readapi", "Settlement"),
		"WebhookDeliveryStatus": prefixedConsts(t, "../webhooks/deliveries.go", "Status"),
		"WebhookEventType":      prefixedConsts(t, "../webhooks/subscriber.go", "Event"),
		"EventType":             domain.DefaultSchemas.Types(),
		"ErrorCode":             errorCodes(t),
		"RebuildStatus":         typedConsts(t, ".", "RebuildStatus"),
	}
	for name, values := range want {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("components.schemas.%s is missing", name)
			continue
		}
		var got []string
		for _, v := range schema.Enum {
			s, _ := v.(string)
			got = append(got, s)
		}
		slices.Sort(got)
		values = slices.Clone(values)
		slices.Sort(values)
		if len(values) < 2 {
			t.Errorf("%s: only %v found in Go: the test lost its source", name, values)
		}
		if !slices.Equal(got, values) {
			t.Errorf("%s: openapi.json has %v, Go has %v", name, got, values)
		}
	}
	// No other enum of strings hides inline, where this test would not see
	// it: each is a component above (a one-value enum is a constant; the
	// sign-out's all=true|false is a flag).
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			e, _ := v["enum"].([]any)
			_, component := want[strings.TrimPrefix(path, "/components/schemas/")]
			if len(e) > 1 && !component && path != "/paths/~1v1~1sessions/delete/parameters/0/schema" {
				if _, isString := e[0].(string); isString {
					t.Errorf("%s: inline enum %v; declare it in components.schemas", path, e)
				}
			}
			for k, x := range v {
				walk(path+"/"+strings.ReplaceAll(k, "/", "~1"), x)
			}
		case []any:
			for i, x := range v {
				walk(path+"/"+strconv.Itoa(i), x)
			}
		}
	}
	var raw map[string]any
	json.Unmarshal(openAPIDoc, &raw)
	walk("", raw)
}

// goConsts parses the non-test Go files at path (a package directory or
// one file) and returns the string constants keep accepts.
func goConsts(t *testing.T, path string, keep func(name string, typ ast.Expr) bool) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(path, "*.go"))
	if strings.HasSuffix(path, ".go") {
		files = []string{path}
	}
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) || !keep(name.Name, vs.Type) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						out = append(out, s)
					}
				}
			}
		}
	}
	return out
}

// typedConsts: the string constants declared with type typ.
func typedConsts(t *testing.T, path, typ string) []string {
	return goConsts(t, path, func(_ string, ty ast.Expr) bool {
		id, ok := ty.(*ast.Ident)
		return ok && id.Name == typ
	})
}

// prefixedConsts: the exported string constants whose name starts with prefix.
func prefixedConsts(t *testing.T, path, prefix string) []string {
	return goConsts(t, path, func(name string, _ ast.Expr) bool { return strings.HasPrefix(name, prefix) })
}

// errorCodes collects every error code this package can answer with from
// its source: errorf's code argument, errorTable's codes and errorBody
// literals, and the fixed body of json.go.
func errorCodes(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("*.go")
	seen := map[string]bool{"internal_error": true} // json.go's fallback body
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			var arg ast.Expr
			switch n := n.(type) {
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "errorf" && len(n.Args) == 3 {
					arg = n.Args[1]
				}
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "errorBody" && len(n.Elts) == 2 {
					arg = n.Elts[0]
				} else if n.Type == nil && len(n.Elts) == 4 { // an errorTable row
					arg = n.Elts[2]
				}
			}
			if lit, ok := arg.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				s, _ := strconv.Unquote(lit.Value)
				seen[s] = true
			}
			return true
		})
	}
	var out []string
	for c := range seen {
		out = append(out, c)
	}
	return out
}
