package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
)

// picd generate fills an empty embedded store that picd audit then finds
// clean, writes the merchants' keys, and refuses a store that holds events.
func TestGenerateThenAudit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	var out, errOut bytes.Buffer
	args := []string{"generate", "--data", dir, "--events", "3000", "--merchants", "6", "--workers", "6", "--payout-every", "5", "--keys", keys}
	if err := run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("generate: %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "6 merchants") {
		t.Errorf("generate said: %s", out.String())
	}
	raw, err := os.ReadFile(keys)
	if err != nil {
		t.Fatal(err)
	}
	var merchants []struct {
		ID        string `json:"id"`
		SecretKey string `json:"secret_key"`
	}
	if err := json.Unmarshal(raw, &merchants); err != nil || len(merchants) != 6 || !strings.HasPrefix(merchants[0].SecretKey, "pic_live_") {
		t.Errorf("keys file: %v %s", err, raw)
	}
	checkSubscribersAtTheHead(t, dir)
	out.Reset()
	auditProfile, rebuildProfile := filepath.Join(dir, "audit.prof"), filepath.Join(dir, "rebuild.prof")
	if err := run(ctx, []string{"audit", "--no-progress", "--cpuprofile", auditProfile, "--data", dir}, &out, &errOut); err != nil {
		t.Fatalf("audit: %v\n%s", err, out.String())
	}
	if err := run(ctx, []string{"projections", "rebuild", "--cpuprofile=" + rebuildProfile, "--data", dir, "invoices"}, &out, &errOut); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out.String())
	}
	for _, f := range []string{auditProfile, rebuildProfile} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("CPU profile %s: %v, %v", f, st, err)
		}
	}
	err = run(ctx, args, &out, &errOut)
	if exitCode(err) != exitUnreachable || !strings.Contains(err.Error(), "already holds events") {
		t.Errorf("generate into a full store: %v (exit %d), want exit 3", err, exitCode(err))
	}
}

// On Postgres the data directory holds only the secrets key; picd generate
// creates it (0700) as serve does, rather than failing on the key file.
func TestGenerateIntoPostgresCreatesTheDataDir(t *testing.T) {
	ctx := context.Background()
	env := postgresEnv(t)
	dir := filepath.Join(t.TempDir(), "not", "yet")
	var out, errOut bytes.Buffer
	args := []string{"generate", "--data", dir, "--store", "postgres", "--postgres-url", strings.TrimPrefix(env[1], "PIC_POSTGRES_URL="),
		"--events", "500", "--merchants", "2", "--workers", "2"}
	if err := run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("generate: %v\n%s%s", err, out.String(), errOut.String())
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v %v, want 0700", st, err)
	}
}

// checkSubscribersAtTheHead: a generated history's payouts, settlements and
// webhooks are behind it, so the subscribers start at its last event, not
// at position 0 (where a 10M history kept them busy for a quarter hour).
func checkSubscribersAtTheHead(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(dir, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var last eventstore.Position
	for {
		recs, err := store.ReadAll(ctx, last, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		last = recs[len(recs)-1].Position
	}
	for _, q := range []string{
		`SELECT position FROM chain_checkpoints WHERE name = 'settlement'`,
		`SELECT position FROM chain_checkpoints WHERE name = 'payout_intake'`,
		`SELECT position FROM webhook_checkpoint WHERE name = 'deliveries'`,
	} {
		var pos string
		if err := store.DB().QueryRowContext(ctx, q).Scan(&pos); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if pos != last.String() {
			t.Errorf("%s: %s, want the log's last event %s", q, pos, last)
		}
	}
}
