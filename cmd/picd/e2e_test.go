package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests build the real picd binary and drive it over HTTP,
// on the embedded store and on Postgres, including being killed mid-write.

var picdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "picd-e2e")
	if err != nil {
		panic(err)
	}
	picdBin = filepath.Join(dir, "picd")
	if out, err := exec.Command("go", "build", "-o", picdBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build picd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type gateway struct {
	t    testing.TB
	cmd  *exec.Cmd
	url  string
	env  []string
	logs *bytes.Buffer
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startGateway runs picd serve with env and waits until it answers.
func startGateway(t testing.TB, env []string) *gateway {
	t.Helper()
	return startGatewayCmd(t, env, exec.Command(picdBin, "serve"))
}

// startGatewayCmd is startGateway with the command that runs picd serve.
func startGatewayCmd(t testing.TB, env []string, cmd *exec.Cmd) *gateway {
	t.Helper()
	addr := freeAddr(t)
	g := &gateway{t: t, url: "http://" + addr, env: env, logs: &bytes.Buffer{}}
	g.cmd = cmd
	// Metrics off unless a test asks (env wins): the default loopback port
	// is one per machine, and tests run several picd at once.
	g.cmd.Env = append(os.Environ(), append(append([]string{"PIC_METRICS_LISTEN=", "PIC_SIMULATOR=true"}, env...), "PIC_LISTEN="+addr, "PIC_SIGNUP_RATE_PER_MINUTE=1000")...)
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(g.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return g
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("picd did not start:\n%s", g.logs)
	return nil
}

func (g *gateway) kill() {
	if g.cmd.ProcessState == nil {
		_ = g.cmd.Process.Signal(syscall.SIGKILL)
		_ = g.cmd.Wait()
	}
}

func (g *gateway) stop() {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		g.t.Fatalf("picd did not stop on SIGTERM:\n%s", g.logs)
	}
}

func (g *gateway) do(method, path, key string, body any) (int, map[string]any) {
	g.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, g.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// postgresEnv creates a database of its own for one test.
func postgresEnv(t testing.TB) []string {
	base := os.Getenv("PIC_TEST_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "picd_e2e_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("postgres (set PIC_TEST_POSTGRES_URL): %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err == nil {
			_, _ = a.Exec("DROP DATABASE " + name + " WITH (FORCE)")
			a.Close()
		}
	})
	return []string{"PIC_STORE=postgres", "PIC_POSTGRES_URL=" + strings.Replace(base, "/test?", "/"+name+"?", 1)}
}

func modes(t *testing.T) map[string]func(*testing.T) []string {
	return map[string]func(*testing.T) []string{
		"sqlite":   func(t *testing.T) []string { return []string{"PIC_DATA_DIR=" + t.TempDir()} },
		"postgres": func(t *testing.T) []string { return append(postgresEnv(t), "PIC_DATA_DIR="+t.TempDir()) },
	}
}

func TestServeOverHTTP(t *testing.T) {
	for name, env := range modes(t) {
		t.Run(name, func(t *testing.T) {
			e := env(t)
			g := startGateway(t, e)
			status, m := g.do("POST", "/v1/merchants", "", map[string]any{"name": "Shop"})
			if status != 201 && status != 200 {
				t.Fatalf("sign-up: %d %v", status, m)
			}
			key := m["secret_key"].(string)
			status, inv := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "USDT.ETH", "amount": "49.99", "order_id": "o-1"})
			if status/100 != 2 || inv["fee"] != "0.124975" || inv["pay_amount"] != "49.99" || inv["status"] != "new" {
				t.Fatalf("create invoice: %d %v", status, inv)
			}
			// Read-your-writes: the very next GET shows it.
			status, got := g.do("GET", "/v1/invoices/"+inv["id"].(string), key, nil)
			if status != 200 || got["id"] != inv["id"] || got["order_id"] != "o-1" {
				t.Fatalf("read back: %d %v", status, got)
			}
			status, list := g.do("GET", "/v1/invoices?limit=5", key, nil)
			if status != 200 || len(list["data"].([]any)) != 1 {
				t.Fatalf("list: %d %v", status, list)
			}
			if status, e := g.do("GET", "/v1/invoices/inv_nope", key, nil); status != 404 || e["error"] == nil {
				t.Fatalf("unknown invoice: %d %v", status, e)
			}
			if status, _ := g.do("GET", "/v1/balance", "pic_live_wrong", nil); status != 401 {
				t.Fatalf("bad key: %d", status)
			}
			g.stop()
		})
	}
}

// TestCrashKeepsAcknowledgedInvoices kills picd with SIGKILL while clients
// create invoices; after a restart every invoice that got a 2xx is readable,
// and the audit (balances rebuilt from the log) agrees with the read models.
func TestCrashKeepsAcknowledgedInvoices(t *testing.T) {
	for name, env := range modes(t) {
		t.Run(name, func(t *testing.T) {
			e := env(t)
			g := startGateway(t, e)
			_, m := g.do("POST", "/v1/merchants", "", map[string]any{"name": "Shop"})
			key := m["secret_key"].(string)

			var mu sync.Mutex
			var acked []string
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			client := &http.Client{Timeout: 5 * time.Second}
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						req, _ := http.NewRequestWithContext(ctx, "POST", g.url+"/v1/invoices", strings.NewReader(`{"asset":"BTC","amount":"0.001"}`))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Authorization", "Bearer "+key)
						resp, err := client.Do(req)
						if err != nil {
							return // the server is gone
						}
						var inv map[string]any
						err = json.NewDecoder(resp.Body).Decode(&inv)
						resp.Body.Close()
						if err == nil && resp.StatusCode/100 == 2 {
							mu.Lock()
							acked = append(acked, inv["id"].(string))
							mu.Unlock()
						}
					}
				}()
			}
			time.Sleep(1500 * time.Millisecond)
			g.kill()
			cancel()
			wg.Wait()
			if len(acked) == 0 {
				t.Fatalf("no invoice was created before the kill:\n%s", g.logs)
			}

			g2 := startGateway(t, e)
			deadline := time.Now().Add(20 * time.Second)
			for _, id := range acked {
				for {
					status, _ := g2.do("GET", "/v1/invoices/"+id, key, nil)
					if status == 200 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("acknowledged invoice %s is gone after the crash (status %d)", id, status)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			g2.stop()
			cmd := exec.Command(picdBin, "audit")
			cmd.Env = append(os.Environ(), e...)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "agree") {
				t.Fatalf("audit after the crash: %v\n%s", err, out)
			}
			t.Logf("%s: %d acknowledged invoices survived SIGKILL", name, len(acked))
		})
	}
}

// TestCopyEventsToPostgres moves an embedded log to Postgres and serves it.
func TestCopyEventsToPostgres(t *testing.T) {
	dataDir := t.TempDir()
	g := startGateway(t, []string{"PIC_DATA_DIR=" + dataDir})
	_, m := g.do("POST", "/v1/merchants", "", map[string]any{"name": "Shop"})
	key := m["secret_key"].(string)
	var ids []string
	for i := 0; i < 5; i++ {
		_, inv := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "BTC", "amount": "0.01"})
		ids = append(ids, inv["id"].(string))
	}
	g.stop()

	pgEnv := postgresEnv(t)
	pgURL := strings.TrimPrefix(pgEnv[1], "PIC_POSTGRES_URL=")
	for run := 0; run < 2; run++ { // a second run finds everything already there
		out, err := exec.Command(picdBin, "copy-events", "--from", "sqlite:"+filepath.Join(dataDir, "picd.db"), "--to", "postgres:"+pgURL).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "identical") {
			t.Fatalf("copy-events run %d: %v\n%s", run, err, out)
		}
	}
	g2 := startGateway(t, append(pgEnv, "PIC_DATA_DIR="+t.TempDir()))
	for _, id := range ids {
		deadline := time.Now().Add(10 * time.Second)
		for {
			status, _ := g2.do("GET", "/v1/invoices/"+id, key, nil)
			if status == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("invoice %s not served from Postgres after the copy: %d", id, status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestLeaderTakeover runs two picd on one Postgres, kills the one that
// leads the background work, and expects the other to take over: its
// projections move again within 10 s and the audit finds nothing applied twice.
func TestLeaderTakeover(t *testing.T) {
	env := append(postgresEnv(t), "PIC_DATA_DIR="+t.TempDir())
	a := startGateway(t, env)
	time.Sleep(300 * time.Millisecond) // let a take the lead first
	b := startGateway(t, env)
	_, m := b.do("POST", "/v1/merchants", "", map[string]any{"name": "Shop"})
	key := m["secret_key"].(string)
	// A write through the follower is readable through the follower.
	status, inv := b.do("POST", "/v1/invoices", key, map[string]any{"asset": "ETH", "amount": "0.5"})
	if status != 201 {
		t.Fatalf("create via follower: %d %v", status, inv)
	}
	if status, _ := b.do("GET", "/v1/invoices/"+inv["id"].(string), key, nil); status != 200 {
		t.Fatalf("read via follower: %d", status)
	}
	if !strings.Contains(a.logs.String(), "leader: this process runs") {
		t.Fatalf("a did not lead:\n%s", a.logs)
	}
	a.kill()
	start := time.Now()
	_, inv2 := b.do("POST", "/v1/invoices", key, map[string]any{"asset": "ETH", "amount": "0.7"})
	for {
		if status, _ := b.do("GET", "/v1/invoices/"+inv2["id"].(string), key, nil); status == 200 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no takeover within 10 s:\n%s", b.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("takeover: the survivor's projections moved %v after the kill", time.Since(start).Round(time.Millisecond))
	b.stop()
	cmd := exec.Command(picdBin, "audit")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("audit: %v\n%s", err, out)
	}
}

// TestObservability checks the operator endpoints of a running picd. The
// metrics are served on their own address (PIC_METRICS_LISTEN), never on
// the public port (issue #17, finding 10).
func TestObservability(t *testing.T) {
	metricsAddr := freeAddr(t)
	g := startGateway(t, []string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_METRICS_LISTEN=" + metricsAddr})
	_, m := g.do("POST", "/v1/merchants", "", map[string]any{"name": "Shop"})
	g.do("POST", "/v1/invoices", m["secret_key"].(string), map[string]any{"asset": "BTC", "amount": "0.01"})
	if status, body := g.do("GET", "/readyz", "", nil); status != 200 || body["ready"] != true {
		t.Fatalf("readyz: %d %v", status, body)
	}
	if status, _ := g.do("GET", "/metrics", "", nil); status != http.StatusNotFound {
		t.Errorf("/metrics on the public port: %d, want 404", status)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics address: %d %s", resp.StatusCode, raw)
	}
	for _, want := range []string{
		`picd_http_requests_total{code="201",method="POST",route="/v1/invoices"} 1`,
		`picd_http_request_duration_seconds_bucket{method="POST",route="/v1/merchants"`,
		"picd_projection_lag_seconds",
		"picd_webhook_queue_depth",
		`picd_follower_applied_total{follower="projections"}`,
		`picd_loop_restarts_total{loop="projections"} 0`,
		"picd_leader 1", // the embedded store's one process always leads
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(g.logs.String(), `"request_id":"req_`) {
		t.Errorf("no request ids in the logs")
	}
}
