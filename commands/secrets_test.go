package commands_test

import (
	"context"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
)

// xorSealer stands in for webhooks.SecretBox: bound to the merchant, and
// nothing of the secret shows in what it returns.
type xorSealer struct{}

func (xorSealer) Seal(merchantID, secret string) (string, error) {
	b := []byte(secret)
	for i := range b {
		b[i] ^= 0x5a ^ merchantID[i%len(merchantID)]
	}
	return "x." + hex.EncodeToString(b), nil
}

func (xorSealer) open(merchantID, sealed string) string {
	b, _ := hex.DecodeString(strings.TrimPrefix(sealed, "x."))
	for i := range b {
		b[i] ^= 0x5a ^ merchantID[i%len(merchantID)]
	}
	return string(b)
}

func sealingSetup(t *testing.T) (sealing, clear commands.Handlers, rekey commands.RekeyWebhookSecretHandler, store eventstore.Store) {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := func() time.Time { return time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC) }
	d := commands.Deps{Store: s, Assets: domain.DefaultAssets(), Now: now, NewID: commands.NewIDGenerator(now)}
	acceptAll := func(domain.Chain, string) error { return nil }
	clear = commands.New(d, commands.StaticAddresses{}, acceptAll)
	d.WebhookSecrets = xorSealer{}
	return commands.New(d, commands.StaticAddresses{}, acceptAll), clear, commands.NewRekeyWebhookSecretHandler(d), s
}

func merchantEvents(t *testing.T, store eventstore.Store, merchantID string) []eventstore.RecordedEvent {
	t.Helper()
	recs, err := store.ReadStream(context.Background(), commands.MerchantStream(merchantID), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// Issue #17, finding 7: with a sealer, neither the sign-up's webhook
// secret nor a rotated one enters the log in clear; the sealed form opens
// to the secret the merchant was shown.
func TestWebhookSecretsEnterTheLogSealed(t *testing.T) {
	ctx := context.Background()
	h, _, _, store := sealingSetup(t)
	r, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "c1", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	rot, err := h.RotateWebhookSecret.Handle(ctx, commands.RotateWebhookSecret{CommandID: "c2", MerchantID: r.MerchantID})
	if err != nil {
		t.Fatal(err)
	}
	recs := merchantEvents(t, store, r.MerchantID)
	if len(recs) != 2 {
		t.Fatalf("%d events", len(recs))
	}
	for _, rec := range recs {
		raw := string(rec.Data) + string(rec.Metadata)
		if strings.Contains(raw, r.WebhookSecret) || strings.Contains(raw, rot.WebhookSecret) || strings.Contains(raw, `"webhook_secret"`) {
			t.Errorf("%s holds a webhook secret in clear: %s", rec.Type, raw)
		}
	}
	reg, err := domain.Decode(recs[0].Type, recs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if got := (xorSealer{}).open(r.MerchantID, reg.(domain.MerchantRegistered).WebhookSecretSealed); got != r.WebhookSecret {
		t.Fatalf("sealed sign-up secret opens to %q, want %q", got, r.WebhookSecret)
	}
	ev, err := domain.Decode(recs[1].Type, recs[1].Data)
	if err != nil {
		t.Fatal(err)
	}
	if e := ev.(domain.WebhookSecretRotated); e.Rekeyed || (xorSealer{}).open(r.MerchantID, e.WebhookSecretSealed) != rot.WebhookSecret {
		t.Fatalf("rotation: %+v", e)
	}
}

// A log from before sealing holds the secret in clear: re-keying appends
// the same secret sealed (once), and leaves sealed merchants alone.
func TestRekeyWebhookSecret(t *testing.T) {
	ctx := context.Background()
	sealing, clear, rekey, store := sealingSetup(t)
	old, err := clear.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "old", Name: "Old shop"})
	if err != nil {
		t.Fatal(err)
	}
	if raw := string(merchantEvents(t, store, old.MerchantID)[0].Data); !strings.Contains(raw, old.WebhookSecret) {
		t.Fatalf("without a sealer the secret is in clear, as in old logs: %s", raw)
	}
	done, _, err := rekey.Handle(ctx, commands.RekeyWebhookSecret{MerchantID: old.MerchantID})
	if err != nil || !done {
		t.Fatalf("rekey: %v %v", done, err)
	}
	recs := merchantEvents(t, store, old.MerchantID)
	if len(recs) != 2 || strings.Contains(string(recs[1].Data), old.WebhookSecret) {
		t.Fatalf("after re-keying: %d events", len(recs))
	}
	ev, _ := domain.Decode(recs[1].Type, recs[1].Data)
	if e := ev.(domain.WebhookSecretRotated); !e.Rekeyed || e.WebhookSecret != "" || (xorSealer{}).open(old.MerchantID, e.WebhookSecretSealed) != old.WebhookSecret {
		t.Fatalf("re-key event: %+v", e)
	}
	if done, _, err := rekey.Handle(ctx, commands.RekeyWebhookSecret{MerchantID: old.MerchantID}); err != nil || done {
		t.Fatalf("second rekey: %v %v", done, err)
	}
	fresh, err := sealing.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "new", Name: "New shop"})
	if err != nil {
		t.Fatal(err)
	}
	if done, _, err := rekey.Handle(ctx, commands.RekeyWebhookSecret{MerchantID: fresh.MerchantID}); err != nil || done {
		t.Fatalf("rekey of a sealed secret: %v %v", done, err)
	}
	if _, _, err := rekey.Handle(ctx, commands.RekeyWebhookSecret{MerchantID: "mer_nope"}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown merchant: %v", err)
	}
	if len(merchantEvents(t, store, old.MerchantID)) != 2 || len(merchantEvents(t, store, fresh.MerchantID)) != 1 {
		t.Fatal("re-keying appended to a merchant whose secret was sealed")
	}
}
