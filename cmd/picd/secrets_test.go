package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/webhooks"
)

// The secrets key is generated once (0600), an existing key file left
// readable is made 0600, and while the read models hold secrets sealed
// under a key, picd refuses to start without a key file (it would generate
// a new one and sign nothing) and says so loudly when given another key.
func TestWebhookSecretBoxKey(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := privateDataDir(data); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(data); fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory %v", fi.Mode().Perm())
	}
	s, err := sqlite.Open(filepath.Join(data, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := sqldb.DB{Read: s.DB(), Write: s.WriteDB(), Dialect: sqldb.SQLite}
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: data}
	box, err := webhookSecretBox(ctx, cfg, db, quiet)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(data, "secrets.key")
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secrets.key: %v %v", fi, err)
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := webhookSecretBox(ctx, cfg, db, quiet)
	if err != nil || again.KeyID() != box.KeyID() {
		t.Fatalf("second start: %v, key %s then %s", err, box.KeyID(), again.KeyID())
	}
	if fi, _ := os.Stat(keyFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("a readable secrets.key stays %v", fi.Mode().Perm())
	}

	sealed, err := box.Seal("mer_1", "whsec_1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.ExecContext(ctx, `INSERT INTO merchants (merchant_id, name, publishable_key, secret_key_hash, webhook_secret, webhook_secret_sealed, created_at)
		VALUES ('mer_1', 'Shop', 'pk', 'hash', '', ?, 0)`, sealed); err != nil {
		t.Fatal(err)
	}
	other := Config{DataDir: data, SecretsKey: strings.Repeat("ab", 32)}
	otherKey, _ := hex.DecodeString(other.SecretsKey)
	otherBox, err := webhooks.NewSecretBox(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	if got, err := webhookSecretBox(ctx, other, db, slog.New(slog.NewTextHandler(&logs, nil))); err != nil || got.KeyID() != otherBox.KeyID() ||
		!strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), box.KeyID()) || !strings.Contains(logs.String(), otherBox.KeyID()) {
		t.Fatalf("another key (an operator who lost the first): %v\n%s", err, logs.String())
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if _, err := webhookSecretBox(ctx, cfg, db, quiet); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("lost key file: %v", err)
	}
	if _, err := os.Stat(keyFile); err == nil {
		t.Fatal("a new key was generated over sealed secrets")
	}
}
