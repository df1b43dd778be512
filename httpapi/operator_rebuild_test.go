package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/projections"
)

const rebuildToken = "operator-token-for-the-rebuild"

// operatorCall sends method to the rebuild endpoint with the bearer token
// and returns the status and the decoded answer.
func operatorCall(t *testing.T, url, method, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %v", method, url, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// A rebuild started through the operator endpoint runs inside the serving
// process while invoices keep being created, reports its progress and
// phases, and leaves every invoice readable.
func TestOperatorRebuildInProcess(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	for i := 0; i < 30; i++ {
		b.createInvoice(t, m.secret, `{"asset":"BTC","amount":"0.01"}`)
	}
	h := NewOperatorRebuild(OperatorRebuildConfig{Token: rebuildToken, Check: projections.CheckRebuildNames,
		Run: func(ctx context.Context, names []string, progress func(int, int64), phase func(string, time.Duration)) error {
			return projections.RebuildWith(ctx, b.store, b.db, names, projections.RebuildOptions{Phase: phase,
				Progress: func(p projections.RebuildProgress) { progress(p.Applied, p.Total) }})
		}})
	srv := httptest.NewServer(h)
	defer srv.Close()

	if code, body := operatorCall(t, srv.URL, "GET", rebuildToken, ""); code != 200 || body["state"] != "idle" {
		t.Fatalf("before any rebuild: %d %v", code, body)
	}
	code, body := operatorCall(t, srv.URL, "POST", rebuildToken, "")
	if code != http.StatusAccepted || body["state"] != "running" {
		t.Fatalf("start: %d %v", code, body)
	}
	created := 30
	for {
		b.createInvoice(t, m.secret, `{"asset":"BTC","amount":"0.01"}`)
		created++
		_, body = operatorCall(t, srv.URL, "GET", rebuildToken, "")
		if body["state"] != "running" {
			break
		}
	}
	if body["state"] != "done" || body["error"] != nil || body["finished_at"] == nil {
		t.Fatalf("after the rebuild: %v", body)
	}
	var phases []string
	for _, p := range body["phases"].([]any) {
		phases = append(phases, p.(map[string]any)["name"].(string))
	}
	if got := strings.Join(phases, ", "); got != "catch-up, held rows, indexes, catch-up again, swap, old tables dropped" {
		t.Fatalf("phases: %s", got)
	}
	// The total is counted as the rebuild starts; the events appended
	// meanwhile are applied too.
	if applied := body["applied"].(float64); applied < 31 || applied < body["total"].(float64) {
		t.Fatalf("applied %v of %v events", applied, body["total"])
	}
	b.createInvoice(t, m.secret, `{"asset":"BTC","amount":"0.01"}`)
	created++
	n := 0
	for after := ""; ; {
		res := b.do(t, req{method: "GET", path: "/v1/invoices?limit=100" + after, key: m.secret})
		page := res.json(t)
		data := page["data"].([]any)
		n += len(data)
		if page["has_more"] != true {
			break
		}
		after = "&starting_after=" + data[len(data)-1].(map[string]any)["id"].(string)
	}
	if n != created {
		t.Fatalf("%d invoices listed after the rebuild, %d created", n, created)
	}
}

// The endpoint takes the operator token only, refuses what it cannot run,
// and runs one rebuild at a time.
func TestOperatorRebuildRefusals(t *testing.T) {
	release := make(chan struct{})
	var runs []string
	h := NewOperatorRebuild(OperatorRebuildConfig{Token: rebuildToken, Check: projections.CheckRebuildNames,
		Run: func(ctx context.Context, names []string, _ func(int, int64), _ func(string, time.Duration)) error {
			runs = append(runs, fmt.Sprint(names))
			<-release
			return fmt.Errorf("stopped by the test")
		}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, c := range []struct {
		method, token, body string
		code                int
		err                 string
	}{
		{"GET", "", "", 401, "unauthorized"},
		{"POST", "wrong-token-of-some-length", "", 401, "unauthorized"},
		{"POST", "pic_live_abc", "", 403, "forbidden"},
		{"DELETE", rebuildToken, "", 405, "method_not_allowed"},
		{"POST", rebuildToken, `{"projections":["nope"]}`, 400, "validation_error"},
		{"POST", rebuildToken, `{"projection":["invoices"]}`, 400, "validation_error"},
		{"POST", rebuildToken, `[`, 400, "invalid_json"},
	} {
		code, body := operatorCall(t, srv.URL, c.method, c.token, c.body)
		if code != c.code || body["error"] != c.err || body["message"] == "" {
			t.Errorf("%s %q %s: %d %v; want %d %s", c.method, c.token, c.body, code, body, c.code, c.err)
		}
	}
	if len(runs) != 0 {
		t.Fatalf("a refused request started a rebuild: %v", runs)
	}
	if code, body := operatorCall(t, srv.URL, "POST", rebuildToken, `{"projections":["invoices"]}`); code != 202 {
		t.Fatalf("start: %d %v", code, body)
	}
	if code, body := operatorCall(t, srv.URL, "POST", rebuildToken, ""); code != 409 || body["error"] != "rebuild_running" {
		t.Fatalf("a second start while one runs: %d %v", code, body)
	}
	close(release)
	if body := rebuildEnded(t, srv.URL); body["state"] != "failed" || body["error"] != "stopped by the test" || fmt.Sprint(body["projections"]) != "[invoices]" {
		t.Fatalf("after a failed rebuild: %v", body)
	}
	// Without a token configured the endpoint does not exist.
	off := httptest.NewServer(NewOperatorRebuild(OperatorRebuildConfig{}))
	defer off.Close()
	if code, body := operatorCall(t, off.URL, "POST", rebuildToken, ""); code != 404 {
		t.Fatalf("no token configured: %d %v", code, body)
	}
}

// lateWaiter is the real projections runner reached late, as when a
// rebuild's index build holds the writer ahead of the projector.
type lateWaiter struct {
	Waiter
	delay time.Duration
}

func (w lateWaiter) WaitFor(ctx context.Context, pos eventstore.Position) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(w.delay):
	}
	return w.Waiter.WaitFor(ctx, pos)
}

// While this process's own maintenance holds the writer (WriterBusy), a
// created invoice waits the longer ReadYourWritesWaitBusy to become
// readable instead of being answered 503 after ReadYourWritesWait.
func TestReadYourWritesWaitsOutOwnMaintenance(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	var busy atomic.Bool
	cfg, deps := b.cfg, b.deps
	cfg.ReadYourWritesWait, cfg.ReadYourWritesWaitBusy = 100*time.Millisecond, 5*time.Second
	deps.Wait, deps.WriterBusy = lateWaiter{Waiter: b.runner, delay: 400 * time.Millisecond}, busy.Load
	srv := httptest.NewServer(New(cfg, deps))
	defer srv.Close()
	create := func() (int, map[string]any) {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/invoices", strings.NewReader(`{"asset":"BTC","amount":"0.01"}`))
		req.Header.Set("Authorization", "Bearer "+m.secret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, body := create(); code != http.StatusServiceUnavailable || body["error"] != "service_unavailable" {
		t.Fatalf("projector late, writer not busy: %d %v; want 503", code, body)
	}
	busy.Store(true)
	code, body := create()
	if code != http.StatusCreated {
		t.Fatalf("projector late behind this process's maintenance: %d %v; want 201", code, body)
	}
	if got := b.do(t, req{method: "GET", path: "/v1/invoices/" + body["id"].(string), key: m.secret}); got.status != 200 {
		t.Fatalf("the invoice answered 201 is not readable: %d", got.status)
	}
}

// A rebuild of another process holds the database's rebuild lock: the
// endpoint answers 409 before it starts anything; once that one has ended
// it starts, and holds the lock itself until its rebuild ends.
func TestOperatorRebuildLockedElsewhere(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	elsewhere, err := projections.LockRebuild(ctx, b.db)
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan struct{}, 1)
	finish := make(chan struct{})
	h := NewOperatorRebuild(OperatorRebuildConfig{Token: rebuildToken,
		Lock: func(ctx context.Context) (func(), bool, error) { return projections.TryLockRebuild(ctx, b.db) },
		Run: func(ctx context.Context, names []string, _ func(int, int64), _ func(string, time.Duration)) error {
			ran <- struct{}{}
			<-finish
			return projections.RebuildWith(ctx, b.store, b.db, names, projections.RebuildOptions{Locked: true})
		}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	code, body := operatorCall(t, srv.URL, "POST", rebuildToken, "")
	if code != 409 || body["error"] != "rebuild_running" || !strings.Contains(fmt.Sprint(body["message"]), "another process") {
		t.Fatalf("while another process rebuilds: %d %v", code, body)
	}
	if len(ran) != 0 {
		t.Fatal("the refused request ran a rebuild")
	}
	elsewhere()
	if code, body := operatorCall(t, srv.URL, "POST", rebuildToken, ""); code != 202 {
		t.Fatalf("after the other ended: %d %v", code, body)
	}
	<-ran
	if _, err := projections.LockRebuild(ctx, b.db); !errors.Is(err, projections.ErrRebuildRunning) {
		t.Fatalf("the endpoint's rebuild does not hold the lock: %v", err)
	}
	close(finish)
	if body := rebuildEnded(t, srv.URL); body["state"] != "done" {
		t.Fatalf("after the rebuild: %v", body)
	}
	release, err := projections.LockRebuild(ctx, b.db)
	if err != nil {
		t.Fatalf("the lock after the endpoint's rebuild: %v", err)
	}
	release()
}

// rebuildEnded polls the endpoint until its rebuild is no longer running
// and returns that answer.
func rebuildEnded(t *testing.T, url string) map[string]any {
	t.Helper()
	for {
		_, body := operatorCall(t, url, "GET", rebuildToken, "")
		if body["state"] != "running" {
			return body
		}
		time.Sleep(5 * time.Millisecond)
	}
}
