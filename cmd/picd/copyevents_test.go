package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestCopyEventsMovesNothingElse is money rule 8: a log copied from SQLite
// to Postgres and back keeps every event's recorded time (the merchant's
// feed is identical, positions aside), and a gateway started on each copy
// delivers no webhook again to a real receiver, while it still delivers the
// webhooks of what happens after the move.
func TestCopyEventsMovesNothingElse(t *testing.T) {
	rc := newHookReceiver(t)
	dir1 := t.TempDir()
	env1 := append([]string{"PIC_DATA_DIR=" + dir1}, faultEnv()...)
	g := startProc(t, env1)
	key := signUp(t, g.gateway, rc)
	url := g.url
	l := startLoad(func() string { return url }, key, 3)
	time.Sleep(2 * time.Second)
	l.stop()
	s := settle(t, g.url, key, l, rc, 30*time.Second)
	if s.deliveries == 0 {
		t.Fatalf("no webhook was delivered before the copy: %s", s)
	}
	feed1 := merchantFeed(t, g.url, key)
	g.stop()
	before, _, _ := rc.snapshot()

	pgEnv := postgresEnv(t)
	pgURL := strings.TrimPrefix(pgEnv[1], "PIC_POSTGRES_URL=")
	copyEventsRun(t, "sqlite:"+filepath.Join(dir1, "picd.db"), "postgres:"+pgURL)

	// The one file that moves with the log: the key the webhook secrets are sealed under.
	dir2 := t.TempDir()
	copyFile(t, filepath.Join(dir1, "secrets.key"), filepath.Join(dir2, "secrets.key"))
	env2 := append(append(pgEnv, "PIC_DATA_DIR="+dir2), faultEnv()...)
	g2 := startProc(t, env2)
	checkMoved(t, g2, key, rc, feed1, before)
	feed2 := merchantFeed(t, g2.url, key) // with the new invoice's events
	g2.stop()
	before, _, _ = rc.snapshot()

	dir3 := t.TempDir()
	copyFile(t, filepath.Join(dir1, "secrets.key"), filepath.Join(dir3, "secrets.key"))
	copyEventsRun(t, "postgres:"+pgURL, "sqlite:"+filepath.Join(dir3, "picd.db"))
	g3 := startProc(t, append([]string{"PIC_DATA_DIR=" + dir3}, faultEnv()...))
	checkMoved(t, g3, key, rc, feed2, before)
	g3.stop()
	t.Logf("%s; %d feed events kept through SQLite → Postgres → SQLite", s, len(feed2))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyEventsRun(t *testing.T, from, to string) {
	t.Helper()
	out, err := exec.Command(picdBin, "copy-events", "--from", from, "--to", to).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "identical") || !strings.Contains(string(out), "webhooks: carried") {
		t.Fatalf("copy-events %s → %s: %v\n%s", from, to, err, out)
	}
	t.Logf("copy-events %s:\n%s", strings.SplitN(to, ":", 2)[0], out)
}

// checkMoved waits until the gateway on a copied log serves the feed it had
// before (every event, its time, positions aside), then pays one more
// invoice and waits for its webhooks: by then the subscriber has passed
// every copied event, so a re-delivery would have been sent first.
func checkMoved(t *testing.T, g *proc, key string, rc *hookReceiver, want []map[string]any, before map[string]hookArrival) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The merchant's key works once the projections reached its sign-up.
		got, err := tryMerchantFeed(g.url, key)
		if err == nil && len(got) >= len(want) {
			if !reflect.DeepEqual(got[:len(want)], want) {
				for i := range want {
					if !reflect.DeepEqual(got[i], want[i]) {
						t.Fatalf("feed event %d differs after the copy:\n got %v\nwant %v", i, got[i], want[i])
					}
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the copy's feed has %d events, want %d (%v)", len(got), len(want), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	status, inv := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "BTC", "amount": "0.001"})
	if status != 201 {
		t.Fatalf("invoice after the copy: %d %v", status, inv)
	}
	id := inv["id"].(string)
	l := &load{urlFn: func() string { return g.url }, client: &http.Client{Timeout: 10 * time.Second}, codes: map[int]int{}}
	if code := l.post(t.Context(), "/v1/sim/pay", faultSimToken, map[string]string{"invoice_id": id, "amount": inv["pay_amount"].(string)}, nil); code != 200 {
		t.Fatalf("sim pay after the copy: %d", code)
	}
	for {
		l.post(t.Context(), "/v1/sim/mine", faultSimToken, map[string]int{"blocks": 1}, nil)
		got, order, _ := rc.snapshot()
		if types := order[id]; len(types) > 0 && types[len(types)-1] == "invoice.paid" {
			for did, a := range got {
				if b, ok := before[did]; ok && a.count != b.count {
					t.Errorf("delivery %s (%s) was sent again after the copy", did, a.eventType)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the invoice paid after the copy got no invoice.paid webhook: %v", order[id])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// merchantFeed reads the merchant's whole event feed, less the positions
// (each store numbers its log its own way).
func merchantFeed(t *testing.T, url, key string) []map[string]any {
	t.Helper()
	all, err := tryMerchantFeed(url, key)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func tryMerchantFeed(url, key string) ([]map[string]any, error) {
	var all []map[string]any
	after := "0"
	for {
		var p struct {
			Data      []map[string]any `json:"data"`
			HasMore   bool             `json:"has_more"`
			NextAfter string           `json:"next_after"`
		}
		if status, err := getJSON(url+"/v1/events?limit=1000&after="+after, key, &p); err != nil || status != 200 {
			return nil, fmt.Errorf("event feed: %d %v", status, err)
		}
		for _, e := range p.Data {
			delete(e, "position")
			all = append(all, e)
		}
		if !p.HasMore {
			return all, nil
		}
		after = p.NextAfter
	}
}
