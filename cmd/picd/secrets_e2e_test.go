package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/postgres"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/webhooks"
)

// Issue #17, finding 7: what picd writes in its data directory is its own
// (0700, files 0600) even in a directory that already existed with a loose
// mode and under a umask that lets everything through; and no webhook
// secret, at sign-up or after a rotation, is kept in clear in the event log
// or the read models. Deliveries are still signed with the secret the
// merchant was shown, also after a restart.

// startUmask0 is startGateway under umask 000 (the child inherits it).
func startUmask0(t *testing.T, env []string) *gateway {
	t.Helper()
	return startGatewayCmd(t, env, exec.Command("sh", "-c", `umask 000 && exec "$0" serve`, picdBin))
}

// signedReceiver records the test events it gets with their signatures.
type signedReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	body []byte
	sig  string
}

func newSignedReceiver(t *testing.T) *signedReceiver {
	rc := &signedReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.body, rc.sig = raw, r.Header.Get(webhooks.HeaderSignature)
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// signedWith sends a test event through g and checks that it arrives
// signed with secret.
func (rc *signedReceiver) signedWith(t *testing.T, g *gateway, key, secret string) {
	t.Helper()
	status, res := g.do("POST", "/v1/webhooks/test", key, map[string]any{})
	if status != 200 || res["delivered"] != true {
		t.Fatalf("test webhook: %d %v\n%s", status, res, g.logs)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := webhooks.Verify(rc.body, rc.sig, secret); err != nil {
		t.Fatalf("the delivery is not signed with the merchant's secret: %v", err)
	}
}

func TestDataDirIsPrivateAndSecretsSealed(t *testing.T) {
	for name, pg := range map[string]bool{"sqlite": false, "postgres": true} {
		t.Run(name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "volume")
			if err := os.Mkdir(data, 0o755); err != nil { // a volume that already exists
				t.Fatal(err)
			}
			env := []string{"PIC_DATA_DIR=" + data, "PIC_WEBHOOK_ALLOW_PRIVATE=true"}
			if pg {
				env = append(env, postgresEnv(t)...)
			}
			rc := newSignedReceiver(t)
			g := startUmask0(t, env)
			status, m := g.do("POST", "/v1/merchants", "", map[string]any{"name": "Shop", "webhook_url": rc.srv.URL + "/ipn"})
			if status != 201 {
				t.Fatalf("sign-up: %d %v", status, m)
			}
			key, first := m["secret_key"].(string), m["webhook_secret"].(string)
			rc.signedWith(t, g, key, first)
			status, rot := g.do("POST", "/v1/account/webhook-secret/rotate", key, map[string]any{})
			if status != 200 {
				t.Fatalf("rotate: %d %v", status, rot)
			}
			second := rot["webhook_secret"].(string)
			rc.signedWith(t, g, key, second)
			if status, inv := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "USDT.ETH", "amount": "1"}); status != 201 {
				t.Fatalf("invoice: %d %v", status, inv)
			}

			// While picd runs (its -wal and -shm exist): the directory is
			// 0700 and every file in it 0600.
			if fi, err := os.Stat(data); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("data directory: %v %v, want drwx------", fi.Mode().Perm(), err)
			}
			entries, err := os.ReadDir(data)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				fi, err := e.Info()
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, e.Name())
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s is %v, want -rw-------", e.Name(), fi.Mode().Perm())
				}
			}
			want := []string{"secrets.key", "session.key", "sim.token", "mnemonic"}
			if !pg {
				want = append(want, "picd.db", "picd.db-wal", "picd.db-shm")
			}
			for _, w := range want {
				if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+w+" ") {
					t.Errorf("no %s in the data directory: %v", w, names)
				}
			}

			// Neither secret is anywhere in clear: not in the log, not in
			// the read models (on SQLite: not in any byte of any file).
			for _, secret := range []string{first, second} {
				if !pg {
					for _, n := range names {
						raw, err := os.ReadFile(filepath.Join(data, n))
						if err != nil {
							t.Fatal(err)
						}
						if bytes.Contains(raw, []byte(secret)) {
							t.Errorf("%s holds a webhook secret in clear", n)
						}
					}
				}
			}
			if pg {
				url := strings.TrimPrefix(env[len(env)-1], "PIC_POSTGRES_URL=")
				assertNoClearSecrets(t, url, first, second)
			}

			// After a restart the sealed secret still signs.
			g.stop()
			g = startUmask0(t, env)
			rc.signedWith(t, g, key, second)
			g.stop()
		})
	}
}

// assertNoClearSecrets reads the whole Postgres log and the merchants read
// model for the secrets.
func assertNoClearSecrets(t *testing.T, url string, secrets ...string) {
	t.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs, err := s.ReadAll(ctx, eventstore.Start, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows []string
	r, err := db.Query(`SELECT webhook_secret FROM merchants`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var v string
		if err := r.Scan(&v); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, v)
	}
	r.Close()
	for _, secret := range secrets {
		for _, rec := range recs {
			if bytes.Contains(rec.Data, []byte(secret)) || bytes.Contains(rec.Metadata, []byte(secret)) {
				t.Errorf("event %s %s holds a webhook secret in clear", rec.Type, rec.ID)
			}
		}
		for _, v := range rows {
			if strings.Contains(v, secret) {
				t.Errorf("the merchants read model holds a webhook secret in clear")
			}
		}
	}
}

// A log from before sealing holds the secret in clear in MerchantRegistered.
// The gateway started on it re-keys that secret (a WebhookSecretRotated with
// the same secret, sealed; events are immutable, so the old one stays), the
// read model then holds it only sealed, deliveries still verify with the
// secret the merchant has, and the operator's log names the merchant that
// should rotate. A rotation afterwards is sealed like any other.
func TestLegacyClearSecretIsRekeyed(t *testing.T) {
	data := t.TempDir()
	rc := newSignedReceiver(t)
	reg := legacyLog(t, filepath.Join(data, "picd.db"), rc.srv.URL+"/ipn")

	env := []string{"PIC_DATA_DIR=" + data, "PIC_WEBHOOK_ALLOW_PRIVATE=true"}
	g := startGateway(t, env)
	rc.signedWith(t, g, reg.SecretKey, reg.WebhookSecret)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(g.logs.String(), reg.MerchantID) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// The re-key is logged when it is appended; the projector applies it
	// after. Under CI's load the gateway was stopped in between.
	ctx := context.Background()
	s, err := sqlite.Open(filepath.Join(data, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	var clear string
	for time.Now().Before(deadline) {
		if err := s.DB().QueryRowContext(ctx, `SELECT webhook_secret FROM merchants WHERE merchant_id = ?`, reg.MerchantID).Scan(&clear); err == nil && clear == "" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Close()
	g.stop()
	if !strings.Contains(g.logs.String(), "rotate") || !strings.Contains(g.logs.String(), reg.MerchantID) {
		t.Errorf("the operator is not told which merchant should rotate:\n%s", g.logs)
	}

	s, err = sqlite.Open(filepath.Join(data, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.ReadStream(ctx, commands.MerchantStream(reg.MerchantID), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[1].Type != domain.TypeWebhookSecretRotated || bytes.Contains(recs[1].Data, []byte(reg.WebhookSecret)) {
		t.Fatalf("merchant stream after the first start: %d events, last %s %s", len(recs), recs[len(recs)-1].Type, recs[len(recs)-1].Data)
	}
	if err := s.DB().QueryRowContext(ctx, `SELECT webhook_secret FROM merchants WHERE merchant_id = ?`, reg.MerchantID).Scan(&clear); err != nil || clear != "" {
		t.Fatalf("read model after re-keying: %q %v", clear, err)
	}
	s.Close()

	// A second start re-keys nothing more; a rotation is sealed.
	g = startGateway(t, env)
	rc.signedWith(t, g, reg.SecretKey, reg.WebhookSecret)
	status, rot := g.do("POST", "/v1/account/webhook-secret/rotate", reg.SecretKey, map[string]any{})
	if status != 200 {
		t.Fatalf("rotate: %d %v", status, rot)
	}
	rc.signedWith(t, g, reg.SecretKey, rot["webhook_secret"].(string))
	g.stop()
	s, err = sqlite.Open(filepath.Join(data, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs, err = s.ReadStream(ctx, commands.MerchantStream(reg.MerchantID), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || bytes.Contains(recs[2].Data, []byte(rot["webhook_secret"].(string))) {
		t.Fatalf("merchant stream after a second start and a rotation: %d events", len(recs))
	}
}

// legacyLog writes, as picd did before webhook secrets were sealed, a
// merchant whose MerchantRegistered holds its webhook secret in clear, and
// projects it.
func legacyLog(t *testing.T, path, webhookURL string) commands.Registered {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := sqldb.DB{Read: s.DB(), Write: s.WriteDB(), Dialect: sqldb.SQLite}
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	d := commands.Deps{Store: s, Assets: domain.DefaultAssets(), Now: time.Now, NewID: commands.NewIDGenerator(time.Now)}
	h := commands.New(d, commands.StaticAddresses{}, func(domain.Chain, string) error { return nil })
	reg, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "legacy-signup", Name: "Old shop", WebhookURL: webhookURL})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.ReadStream(ctx, commands.MerchantStream(reg.MerchantID), 0, 10)
	if err != nil || len(recs) != 1 || !bytes.Contains(recs[0].Data, []byte(fmt.Sprintf("%q", reg.WebhookSecret))) {
		t.Fatalf("the legacy log does not hold the secret in clear: %v", err)
	}
	if err := projections.NewRunner(s, db, slog.New(slog.NewTextHandler(io.Discard, nil))).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	return reg
}
