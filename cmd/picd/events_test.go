package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestOperatorFeed: the operator's feed of the whole log answers only the
// operator token (from a file): merchant keys are refused by name; pages
// followed by next_after give every event of every merchant once, in the
// order and with the positions picd events export writes, each with its
// type and schema version.
func TestOperatorFeed(t *testing.T) {
	dataDir := t.TempDir()
	tokenFile := filepath.Join(t.TempDir(), "operator.token")
	const token = "op-token-0123456789abcdef"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, []string{"PIC_DATA_DIR=" + dataDir, "PIC_OPERATOR_TOKEN_FILE=" + tokenFile})
	var keys []string
	for i := 0; i < 2; i++ {
		_, m := g.do("POST", "/v1/merchants", "", map[string]any{"name": "Shop"})
		keys = append(keys, m["secret_key"].(string), m["publishable_key"].(string))
		for j := 0; j < 3; j++ {
			if status, inv := g.do("POST", "/v1/invoices", m["secret_key"].(string), map[string]any{"asset": "BTC", "amount": "0.01"}); status != 201 {
				t.Fatalf("invoice: %d %v", status, inv)
			}
		}
	}
	get := func(bearer, query string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", g.url+"/v1/operator/events"+query, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	for _, k := range keys {
		if status, body := get(k, ""); status != 403 || body["error"] != "forbidden" {
			t.Errorf("merchant key %s…: %d %v, want 403 forbidden", k[:12], status, body)
		}
	}
	for _, bad := range []string{"", "op-token-wrong", token + "x"} {
		if status, body := get(bad, ""); status != 401 || body["error"] != "unauthorized" {
			t.Errorf("token %q: %d %v, want 401", bad, status, body)
		}
	}
	if status, body := get(token, "?limit=0"); status != 400 || body["error"] != "validation_error" {
		t.Errorf("limit=0: %d %v", status, body)
	}

	var feed []map[string]any
	merchants := map[string]bool{}
	after := "0/0"
	for pages := 0; ; pages++ {
		status, body := get(token, "?limit=4&after="+after)
		if status != 200 {
			t.Fatalf("operator feed: %d %v", status, body)
		}
		data := body["data"].([]any)
		if len(data) > 4 {
			t.Fatalf("a page of limit 4 has %d records", len(data))
		}
		for _, d := range data {
			r := d.(map[string]any)
			if r["type"] == "" || r["schema_version"] != float64(1) || r["schema"] == "" {
				t.Fatalf("record without type or schema version: %v", r)
			}
			m, _ := r["merchant_id"].(string)
			merchants[m] = true
			feed = append(feed, r)
		}
		after = body["next_after"].(string)
		if body["has_more"] != true {
			break
		}
	}
	delete(merchants, "")
	if len(merchants) != 2 {
		t.Errorf("the feed holds events of %d merchants, want 2", len(merchants))
	}

	g.stop()
	cmd := exec.Command(picdBin, "events", "export", "--format", "jsonl")
	cmd.Env = append(os.Environ(), "PIC_DATA_DIR="+dataDir)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("picd events export: %v\n%s", err, errOut.String())
	}
	var exported []map[string]any
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		exported = append(exported, r)
	}
	if len(exported) != len(feed) || len(feed) == 0 {
		t.Fatalf("export wrote %d events, the HTTP feed gave %d", len(exported), len(feed))
	}
	for i := range feed {
		if feed[i]["event_id"] != exported[i]["event_id"] || feed[i]["position"] != exported[i]["position"] {
			t.Fatalf("event %d: feed %v %v, export %v %v", i, feed[i]["event_id"], feed[i]["position"], exported[i]["event_id"], exported[i]["position"])
		}
	}
	// Resuming from a position gives the rest.
	mid := exported[len(exported)/2]["position"].(string)
	cmd = exec.Command(picdBin, "events", "export", "--from", mid, "--format", "csv", "--quiet")
	cmd.Env = append(os.Environ(), "PIC_DATA_DIR="+dataDir)
	raw, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Count(raw, []byte("\n")) // header + rows (no newlines inside: JSON is compact)
	if want := len(exported) - len(exported)/2 - 1 + 1; lines != want {
		t.Errorf("csv export from %s: %d lines, want %d (header and the rest)", mid, lines, want)
	}
	t.Logf("%d events of 2 merchants through the operator feed in pages of 4, equal to the export", len(feed))
}
