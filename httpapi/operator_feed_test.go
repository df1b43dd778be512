package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/httpapi"
)

// The operator feed bounds what it serves at once: while its one slot is
// held by a long poll, the next request is answered 429 with Retry-After,
// and the long poll returns the event appended meanwhile.
func TestOperatorFeedBackpressure(t *testing.T) {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const token = "operator-token-for-the-test"
	srv := httptest.NewServer(httpapi.NewOperatorFeed(httpapi.OperatorFeedConfig{Store: s, Token: token, MaxConcurrent: 1}))
	defer srv.Close()
	get := func(query string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest("GET", srv.URL+query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return nil, nil
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	type answer struct {
		status int
		body   map[string]any
	}
	polled := make(chan answer, 1)
	longPoll := func() {
		resp, body := get("?wait=30")
		if resp != nil {
			polled <- answer{resp.StatusCode, body}
		}
	}
	go longPoll()
	// Until the long poll holds the slot, a second request may get it (and
	// the long poll, finding the slot taken, is refused: it asks again).
	for held := false; !held; {
		select {
		case a := <-polled:
			if a.status != http.StatusTooManyRequests {
				t.Fatalf("the long poll answered before anything was appended: %d %v", a.status, a.body)
			}
			go longPoll()
			continue
		default:
		}
		resp, body := get("?limit=1")
		if resp == nil {
			return
		}
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			if resp.Header.Get("Retry-After") == "" || body["error"] != "too_many_requests" {
				t.Errorf("busy answer: %v %v", resp.Header, body)
			}
			held = true
		case resp.StatusCode != 200:
			t.Fatalf("feed: %d %v", resp.StatusCode, body)
		}
	}
	if _, err := s.Append(context.Background(), "test-1", eventstore.NoStream, []eventstore.EventData{{ID: "e1", Type: "Thing", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	a := <-polled
	if a.status != 200 || len(a.body["data"].([]any)) != 1 {
		t.Fatalf("long poll: %d %v", a.status, a.body)
	}
	if resp, body := get("?limit=1"); resp.StatusCode != 200 || body["next_after"] == "0/0" {
		t.Fatalf("after the long poll: %d %v", resp.StatusCode, body)
	}
}
