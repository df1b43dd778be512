package commands

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// Key prefixes, as the API promises.
const (
	SecretKeyPrefix      = "pic_live_"
	PublishableKeyPrefix = "pic_pub_"
	WebhookSecretPrefix  = "whsec_"
)

// HashSecretKey is how a secret key is stored and looked up: keys carry 192
// random bits, so one SHA-256 is enough (no password stretching needed).
func HashSecretKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

func randomToken(prefix string, bytes int) (string, error) {
	b := make([]byte, bytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random key: %w", err)
	}
	return prefix + hex.EncodeToString(b), nil
}

// Credentials are shown to the merchant once; only the hash of the secret
// key goes into the log.
type Credentials struct {
	SecretKey      string
	PublishableKey string
	WebhookSecret  string
}

func newCredentials() (Credentials, domain.MerchantKeys, error) {
	var c Credentials
	var err error
	if c.SecretKey, err = randomToken(SecretKeyPrefix, 24); err != nil {
		return c, domain.MerchantKeys{}, err
	}
	if c.PublishableKey, err = randomToken(PublishableKeyPrefix, 24); err != nil {
		return c, domain.MerchantKeys{}, err
	}
	if c.WebhookSecret, err = randomToken(WebhookSecretPrefix, 32); err != nil {
		return c, domain.MerchantKeys{}, err
	}
	return c, domain.MerchantKeys{SecretKeyHash: HashSecretKey(c.SecretKey), PublishableKey: c.PublishableKey, WebhookSecret: c.WebhookSecret}, nil
}

// SecretSealer seals a merchant's webhook secret before it enters the log;
// *webhooks.SecretBox implements it (and opens it where deliveries are
// signed).
type SecretSealer interface {
	Seal(merchantID, secret string) (string, error)
}

// storedWebhookSecret is how a webhook secret goes into an event: sealed
// when d has a sealer, else in clear (tests; logs from before sealing).
func storedWebhookSecret(d Deps, merchantID, secret string) (clear, sealed string, err error) {
	if d.WebhookSecrets == nil {
		return secret, "", nil
	}
	sealed, err = d.WebhookSecrets.Seal(merchantID, secret)
	if err != nil {
		return "", "", fmt.Errorf("seal webhook secret: %w", err)
	}
	return "", sealed, nil
}

// RegisterMerchant signs a merchant up.
type RegisterMerchant struct {
	CommandID  string
	Name       string
	WebhookURL string
}

// Registered is the sign-up's answer; the secrets in it are shown once.
type Registered struct {
	MerchantID string
	Credentials
	Position eventstore.Position
}

type RegisterMerchantHandler struct{ d Deps }

// Handle errors: domain.ErrValidation.
func (h RegisterMerchantHandler) Handle(ctx context.Context, c RegisterMerchant) (Registered, error) {
	creds, keys, err := newCredentials()
	if err != nil {
		return Registered{}, err
	}
	id := h.d.NewID("mer_")
	var sealed string
	if keys.WebhookSecret, sealed, err = storedWebhookSecret(h.d, id, creds.WebhookSecret); err != nil {
		return Registered{}, err
	}
	ev, err := domain.RegisterMerchant(id, c.Name, c.WebhookURL, keys, h.d.Now())
	if err != nil {
		return Registered{}, err
	}
	ev.WebhookSecretSealed = sealed
	stream := MerchantStream(id)
	data, err := encode([]domain.Event{ev}, stream, Metadata{CommandID: c.CommandID, MerchantID: id, OccurredAt: ev.RegisteredAt})
	if err != nil {
		return Registered{}, err
	}
	res, err := h.d.Store.Append(ctx, stream, eventstore.NoStream, data)
	if err != nil {
		return Registered{}, fmt.Errorf("register merchant: %w", err)
	}
	return Registered{MerchantID: id, Credentials: creds, Position: res.Position}, nil
}

// merchantCommand runs decide against the merchant's current state.
func merchantCommand(ctx context.Context, d Deps, commandID, merchantID string,
	decide func(m *domain.Merchant) ([]domain.Event, error)) (eventstore.AppendResult, []domain.Event, error) {
	meta := Metadata{CommandID: commandID, MerchantID: merchantID, OccurredAt: d.Now().UTC()}
	return execute(ctx, d.Store, MerchantStream(merchantID), &meta, func() (func(domain.Event), func() ([]domain.Event, error)) {
		m := &domain.Merchant{}
		return m.Apply, func() ([]domain.Event, error) { return decide(m) }
	})
}

// RotateKeys replaces the secret and publishable keys; the old ones stop
// working as soon as the projection has the new event.
type RotateKeys struct {
	CommandID  string
	MerchantID string
}

type RotatedKeys struct {
	SecretKey      string
	PublishableKey string
	Position       eventstore.Position
}

type RotateKeysHandler struct{ d Deps }

// Handle errors: domain.ErrNotFound.
func (h RotateKeysHandler) Handle(ctx context.Context, c RotateKeys) (RotatedKeys, error) {
	creds, keys, err := newCredentials()
	if err != nil {
		return RotatedKeys{}, err
	}
	res, _, err := merchantCommand(ctx, h.d, c.CommandID, c.MerchantID, func(m *domain.Merchant) ([]domain.Event, error) {
		ev, err := m.RotateKeys(keys, h.d.Now())
		return []domain.Event{ev}, err
	})
	if err != nil {
		return RotatedKeys{}, err
	}
	return RotatedKeys{SecretKey: creds.SecretKey, PublishableKey: creds.PublishableKey, Position: res.Position}, nil
}

// RotateWebhookSecret replaces the webhook signing secret.
type RotateWebhookSecret struct {
	CommandID  string
	MerchantID string
}

type RotatedWebhookSecret struct {
	WebhookSecret string
	Position      eventstore.Position
}

type RotateWebhookSecretHandler struct{ d Deps }

// Handle errors: domain.ErrNotFound.
func (h RotateWebhookSecretHandler) Handle(ctx context.Context, c RotateWebhookSecret) (RotatedWebhookSecret, error) {
	secret, err := randomToken(WebhookSecretPrefix, 32)
	if err != nil {
		return RotatedWebhookSecret{}, err
	}
	clear, sealed, err := storedWebhookSecret(h.d, c.MerchantID, secret)
	if err != nil {
		return RotatedWebhookSecret{}, err
	}
	res, _, err := merchantCommand(ctx, h.d, c.CommandID, c.MerchantID, func(m *domain.Merchant) ([]domain.Event, error) {
		ev, err := m.RotateWebhookSecret(clear, h.d.Now())
		ev.WebhookSecretSealed = sealed
		return []domain.Event{ev}, err
	})
	if err != nil {
		return RotatedWebhookSecret{}, err
	}
	return RotatedWebhookSecret{WebhookSecret: secret, Position: res.Position}, nil
}

// RekeyWebhookSecret seals a merchant's webhook secret that its stream
// holds in clear (a log from before secrets were sealed): it appends a
// WebhookSecretRotated with the same secret, sealed, and Rekeyed set. The
// older event keeps the clear value (events are immutable), so the
// merchant should still rotate.
type RekeyWebhookSecret struct {
	CommandID  string
	MerchantID string
}

type RekeyWebhookSecretHandler struct{ d Deps }

// NewRekeyWebhookSecretHandler builds the handler; d.WebhookSecrets must be set.
func NewRekeyWebhookSecretHandler(d Deps) RekeyWebhookSecretHandler {
	return RekeyWebhookSecretHandler{d}
}

// ErrNoSealer: re-keying needs Deps.WebhookSecrets.
var ErrNoSealer = errors.New("commands: no webhook secret sealer configured")

// Handle reports whether it appended (false: the secret was sealed
// already). Errors: domain.ErrNotFound, ErrNoSealer.
func (h RekeyWebhookSecretHandler) Handle(ctx context.Context, c RekeyWebhookSecret) (bool, eventstore.Position, error) {
	if h.d.WebhookSecrets == nil {
		return false, eventstore.Position{}, ErrNoSealer
	}
	meta := Metadata{CommandID: c.CommandID, MerchantID: c.MerchantID, OccurredAt: h.d.Now().UTC()}
	res, evs, err := execute(ctx, h.d.Store, MerchantStream(c.MerchantID), &meta, func() (func(domain.Event), func() ([]domain.Event, error)) {
		m := &domain.Merchant{}
		var clear string // the live secret, when the stream holds it in clear
		apply := func(e domain.Event) {
			m.Apply(e)
			switch e := e.(type) {
			case domain.MerchantRegistered:
				clear = e.WebhookSecret
			case domain.WebhookSecretRotated:
				clear = e.WebhookSecret
			}
		}
		return apply, func() ([]domain.Event, error) {
			if !m.Registered() {
				return nil, fmt.Errorf("merchant: %w", domain.ErrNotFound)
			}
			if clear == "" {
				return nil, nil
			}
			_, sealed, err := storedWebhookSecret(h.d, c.MerchantID, clear)
			if err != nil {
				return nil, err
			}
			return []domain.Event{domain.WebhookSecretRotated{MerchantID: c.MerchantID, WebhookSecretSealed: sealed,
				Rekeyed: true, RotatedAt: h.d.Now().UTC()}}, nil
		}
	})
	if err != nil {
		return false, eventstore.Position{}, err
	}
	return len(evs) > 0, res.Position, nil
}

// UpdateAccount changes the webhook URL and the consolidation coin.
type UpdateAccount struct {
	CommandID  string
	MerchantID string
	Patch      domain.AccountPatch
}

type UpdateAccountHandler struct{ d Deps }

// Handle returns the position to wait for (zero when nothing changed).
// Errors: domain.ErrNotFound, domain.ErrValidation, domain.ErrUnsupportedAsset.
func (h UpdateAccountHandler) Handle(ctx context.Context, c UpdateAccount) (eventstore.Position, error) {
	res, _, err := merchantCommand(ctx, h.d, c.CommandID, c.MerchantID, func(m *domain.Merchant) ([]domain.Event, error) {
		return m.ChangeSettings(c.Patch, h.d.Assets, h.d.Now())
	})
	return res.Position, err
}

// SetPayoutSettings replaces one asset's payout settings.
type SetPayoutSettings struct {
	CommandID  string
	MerchantID string
	Settings   domain.PayoutSettings
}

type SetPayoutSettingsHandler struct {
	d            Deps
	checkAddress domain.AddressCheck
}

// Handle errors: domain.ErrNotFound, domain.ErrValidation, domain.ErrUnsupportedAsset, domain.ErrInvalidAmount.
func (h SetPayoutSettingsHandler) Handle(ctx context.Context, c SetPayoutSettings) (eventstore.Position, error) {
	res, _, err := merchantCommand(ctx, h.d, c.CommandID, c.MerchantID, func(m *domain.Merchant) ([]domain.Event, error) {
		ev, err := m.SetPayoutSettings(c.Settings, h.d.Assets, h.checkAddress, h.d.Now())
		return []domain.Event{ev}, err
	})
	return res.Position, err
}
