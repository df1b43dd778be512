package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
)

// answered records, across every test of the package, which status each
// operation answered: setup's server goes through recordAnswers.
var answered = struct {
	sync.Mutex
	byOp map[string]map[int]bool // "GET /v1/invoices/{id}" -> statuses
}{byOp: map[string]map[int]bool{}}

// recordAnswers notes the route pattern and status of each answer of h
// (New's router; still a chi.Router for the tests that walk it).
func recordAnswers(h http.Handler) http.Handler { return recordingRouter{h.(chi.Router)} }

type recordingRouter struct{ chi.Router }

// ServeHTTP makes the route context here so that chi fills in this one,
// which outlives the request (chi returns its own to a pool).
func (rr recordingRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rctx := chi.NewRouteContext()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	rr.Router.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx)))
	pattern := rctx.RoutePattern()
	if pattern == "" {
		return // no route: 404 not_found or 405, answered for any path
	}
	answered.Lock()
	defer answered.Unlock()
	op := r.Method + " " + pattern
	if answered.byOp[op] == nil {
		answered.byOp[op] = map[int]bool{}
	}
	answered.byOp[op][sw.status] = true
}

type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestMain runs the tests, then holds openapi.json to every status the
// tests saw an operation answer: a status the server gives and the
// document does not list fails the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if problems := undocumentedAnswers(); len(problems) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: openapi.json does not list statuses the tests saw answered:\n  %s\n", strings.Join(problems, "\n  "))
			code = 1
		}
	}
	os.Exit(code)
}

// undocumentedAnswers lists "METHOD route: status" for each recorded answer
// whose operation does not document that status.
func undocumentedAnswers() []string {
	documented, err := documentedStatuses()
	if err != nil {
		return []string{err.Error()}
	}
	answered.Lock()
	defer answered.Unlock()
	var out []string
	for op, statuses := range answered.byOp {
		for status := range statuses {
			if !documented[op][strconv.Itoa(status)] {
				out = append(out, fmt.Sprintf("%s: %d", op, status))
			}
		}
	}
	sort.Strings(out)
	return out
}

// documentedStatuses maps "METHOD path" to the response codes openapi.json
// lists for it.
func documentedStatuses() (map[string]map[string]bool, error) {
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		return nil, err
	}
	out := map[string]map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			codes := map[string]bool{}
			for code := range op.Responses {
				codes[code] = true
			}
			out[strings.ToUpper(method)+" "+path] = codes
		}
	}
	return out, nil
}
