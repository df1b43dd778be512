package webhooks

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/commands"
)

// Issue #17, finding 7: the log and the read model hold the webhook secret
// sealed; the worker opens it to sign, so receivers verify with the secret
// they were shown, after a rotation too. A secret of a log from before
// sealing (in clear) still signs.
func TestDeliveriesSignedWithSealedSecrets(t *testing.T) {
	e := setup(t, embedded)
	rc := newReceiver(t)
	sealed := e.merchant("Sealed", rc.srv.URL+"/sealed")
	rot, err := e.h.RotateWebhookSecret.Handle(e.ctx, commands.RotateWebhookSecret{CommandID: e.id("rot"), MerchantID: sealed.MerchantID})
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := e.clear.RegisterMerchant.Handle(e.ctx, commands.RegisterMerchant{CommandID: e.id("r"), Name: "Legacy", WebhookURL: rc.srv.URL + "/legacy"})
	if err != nil {
		t.Fatal(err)
	}
	e.observe(e.invoice(sealed.MerchantID), "1")
	e.observe(e.invoice(legacy.MerchantID), "1")
	e.sync()
	var stored string
	if err := e.db.Read.QueryRowContext(e.ctx, `SELECT webhook_secret || webhook_secret_sealed FROM merchants WHERE merchant_id = ?`, sealed.MerchantID).Scan(&stored); err != nil ||
		strings.Contains(stored, rot.WebhookSecret) || stored == "" {
		t.Fatalf("read model holds %q, %v", stored, err)
	}
	e.drain(e.worker(Config{AllowPrivate: true}), 0, 3)
	secrets := map[string]string{"/sealed": rot.WebhookSecret, "/legacy": legacy.WebhookSecret}
	got := rc.requests()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	for _, r := range got {
		if err := Verify(r.Body, r.Header.Get(HeaderSignature), secrets[r.Path]); err != nil {
			t.Errorf("%s: %v", r.Path, err)
		}
	}
}

// A worker without the key the secrets were sealed under sends nothing
// (an unsigned or wrongly signed delivery would be worse), records no
// attempt, keeps the delivery pending, and tells the operator why.
func TestSealedSecretWithoutItsKey(t *testing.T) {
	e := setup(t, embedded)
	rc := newReceiver(t)
	m := e.merchant("Shop", rc.srv.URL)
	e.observe(e.invoice(m.MerchantID), "1")
	e.sync()
	other, err := NewSecretBox(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	for name, box := range map[string]*SecretBox{"no key": nil, "another key": other} {
		e.clock.Advance(notReadyDelay) // due again
		var logs bytes.Buffer
		w := NewWorker(e.db, Config{AllowPrivate: true, Secrets: box, Now: e.clock.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if _, err := w.Pass(e.ctx); err != nil {
			t.Fatal(err)
		}
		d := e.all(w, m.MerchantID)[0]
		if len(rc.requests()) != 0 || d.Status != StatusPending || len(d.Attempts) != 0 {
			t.Fatalf("%s: %d requests, delivery %+v", name, len(rc.requests()), d)
		}
		if !strings.Contains(logs.String(), "secrets key") {
			t.Fatalf("%s: the operator's log does not say why: %s", name, logs.String())
		}
	}
}
