package projections_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// prefixSealer seals by prefixing: enough to tell the forms apart.
type prefixSealer struct{}

func (prefixSealer) Seal(merchantID, secret string) (string, error) {
	return "sealed(" + merchantID + ")", nil
}

func TestWebhookSecretReadModelSQLite(t *testing.T)   { testWebhookSecretReadModel(t, separateSQLite) }
func TestWebhookSecretReadModelPostgres(t *testing.T) { testWebhookSecretReadModel(t, postgresDB) }

// Issue #17, finding 7: the merchants read model keeps a sealed secret
// sealed and no clear copy; a clear secret of an old log until it is
// re-keyed; and remembers that the live secret was in clear in the log
// (exposed) until the merchant really rotates it.
func testWebhookSecretReadModel(t *testing.T, newDB func(*testing.T) sqldb.DB) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := func() time.Time { return time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC) }
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: now, NewID: commands.NewIDGenerator(now)}
	accept := func(domain.Chain, string) error { return nil }
	clear := commands.New(d, commands.StaticAddresses{}, accept)
	d.WebhookSecrets = prefixSealer{}
	sealing := commands.New(d, commands.StaticAddresses{}, accept)
	rekey := commands.NewRekeyWebhookSecretHandler(d)

	db := newDB(t)
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	runner := projections.NewRunner(store, db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	type row struct {
		clear, sealed string
		exposed       int
	}
	read := func(id string) row {
		t.Helper()
		if err := runner.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		var r row
		if err := db.Read.QueryRowContext(ctx, db.Q(`SELECT webhook_secret, webhook_secret_sealed, webhook_secret_exposed FROM merchants WHERE merchant_id = ?`), id).
			Scan(&r.clear, &r.sealed, &r.exposed); err != nil {
			t.Fatal(err)
		}
		return r
	}

	fresh, err := sealing.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "fresh", Name: "New"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := read(fresh.MerchantID), (row{"", "sealed(" + fresh.MerchantID + ")", 0}); got != want {
		t.Fatalf("sealed sign-up: %+v, want %+v", got, want)
	}
	old, err := clear.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "old", Name: "Old"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := read(old.MerchantID), (row{old.WebhookSecret, "", 1}); got != want {
		t.Fatalf("clear sign-up of an old log: %+v, want %+v", got, want)
	}
	if _, _, err := rekey.Handle(ctx, commands.RekeyWebhookSecret{MerchantID: old.MerchantID}); err != nil {
		t.Fatal(err)
	}
	if got, want := read(old.MerchantID), (row{"", "sealed(" + old.MerchantID + ")", 1}); got != want {
		t.Fatalf("re-keyed: %+v, want %+v", got, want)
	}
	if _, err := sealing.RotateWebhookSecret.Handle(ctx, commands.RotateWebhookSecret{CommandID: "rot", MerchantID: old.MerchantID}); err != nil {
		t.Fatal(err)
	}
	if got, want := read(old.MerchantID), (row{"", "sealed(" + old.MerchantID + ")", 0}); got != want {
		t.Fatalf("rotated: %+v, want %+v", got, want)
	}

	// The analytics feed (GET /v1/events) carries neither form.
	rows, err := db.Read.QueryContext(ctx, `SELECT type, data FROM event_feed`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var typ, data string
		if err := rows.Scan(&typ, &data); err != nil {
			t.Fatal(err)
		}
		n++
		if strings.Contains(data, "webhook_secret") || strings.Contains(data, "sealed(") || strings.Contains(data, "whsec_") {
			t.Errorf("feed %s carries a webhook secret: %s", typ, data)
		}
	}
	if n != 4 {
		t.Fatalf("%d feed events, want 4", n)
	}
}
