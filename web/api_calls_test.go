package web

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// operation is one documented /v1 operation, e.g. POST /v1/payouts/{id}/cancel.
type operation struct {
	name string
	re   *regexp.Regexp // the method and path, {params} as one segment
}

// publicOperations are the operations httpapi/openapi.json documents for
// merchants (the operator's feed is left out).
func publicOperations(t *testing.T) []operation {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "httpapi", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\\\{[a-z_]+\\\}`)
	var ops []operation
	for path, methods := range doc.Paths {
		if strings.HasPrefix(path, "/v1/operator/") {
			continue
		}
		for m := range methods {
			method := strings.ToUpper(m)
			if !slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, method) {
				continue
			}
			pattern := param.ReplaceAllString(regexp.QuoteMeta(path), `[^/]+`)
			ops = append(ops, operation{name: method + " " + path, re: regexp.MustCompile(`^` + method + ` ` + pattern + `$`)})
		}
	}
	if len(ops) < 20 {
		t.Fatalf("read only %d operations from openapi.json", len(ops))
	}
	return ops
}

// checkBrowserCalls (issue #20: every dashboard action is a public /v1
// call): every request the browser sent is a page or a static file, or an
// operation of the public API's description; and the pages used each of
// the operations in want.
func checkBrowserCalls(t *testing.T, calls []string, want []string) {
	t.Helper()
	ops := publicOperations(t)
	used := map[string]int{}
	for _, c := range calls {
		method, path, _ := strings.Cut(c, " ")
		if !strings.HasPrefix(path, "/v1/") {
			if method != "GET" || !(strings.HasPrefix(path, "/pay/") || strings.HasPrefix(path, "/dashboard") || path == "/favicon.ico") {
				t.Errorf("the browser sent %s, which is neither a page nor a /v1 call", c)
			}
			continue
		}
		i := slices.IndexFunc(ops, func(o operation) bool { return o.re.MatchString(c) })
		if i < 0 {
			t.Errorf("the browser sent %s, which is no operation of the public API (httpapi/openapi.json)", c)
			continue
		}
		used[ops[i].name]++
	}
	for _, w := range want {
		if used[w] == 0 {
			t.Errorf("the pages never called %s", w)
		}
	}
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("the browser's %d requests used %d operations of /v1: %s", len(calls), len(names), strings.Join(names, ", "))
}
