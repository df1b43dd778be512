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

// Handle errors: domain.ErrValidation. A retry (the same command id)
// answers with the merchant it registered; the secret key and a sealed
// webhook secret are shown once, so the retry's Credentials hold only what
// the log has in clear.
func (h RegisterMerchantHandler) Handle(ctx context.Context, c RegisterMerchant) (Registered, error) {
	creds, keys, err := newCredentials()
	if err != nil {
		return Registered{}, err
	}
	commandID := c.CommandID
	if commandID == "" {
		commandID = randomCommandID()
	}
	now := h.d.Now()
	id := domain.DerivedID("mer_", commandID, "", now)
	var sealed string
	if keys.WebhookSecret, sealed, err = storedWebhookSecret(h.d, id, creds.WebhookSecret); err != nil {
		return Registered{}, err
	}
	ev, err := domain.RegisterMerchant(id, c.Name, c.WebhookURL, keys, now)
	if err != nil {
		return Registered{}, err
	}
	ev.WebhookSecretSealed = sealed
	meta := Metadata{CommandID: commandID, MerchantID: id, OccurredAt: ev.RegisteredAt}
	w, err := write(ctx, h.d.Store, command{stream: MerchantStream(id), meta: &meta, created: true,
		attempt: func() (*state, func() ([]domain.Event, error)) {
			m := &domain.Merchant{}
			return newState(m.Apply), func() ([]domain.Event, error) {
				if m.Registered() { // another command's merchant: the ids collided
					return nil, fmt.Errorf("%w: merchant %s exists", domain.ErrInvalidState, id)
				}
				return []domain.Event{ev}, nil
			}
		}})
	if err != nil {
		return Registered{}, fmt.Errorf("register merchant: %w", err)
	}
	stored, ok := w.events[0].(domain.MerchantRegistered)
	if !ok {
		return Registered{}, fmt.Errorf("%w: command %s already recorded a %s", domain.ErrInvalidState, commandID, w.events[0].EventType())
	}
	if w.replayed {
		creds = Credentials{PublishableKey: stored.PublishableKey, WebhookSecret: stored.WebhookSecret}
	}
	return Registered{MerchantID: id, Credentials: creds, Position: w.res.Position}, nil
}

// merchantCommand runs decide against the merchant's current state.
func merchantCommand(ctx context.Context, d Deps, commandID, merchantID string,
	decide func(m *domain.Merchant) ([]domain.Event, error)) (written, error) {
	meta := Metadata{CommandID: commandID, MerchantID: merchantID, OccurredAt: d.Now().UTC()}
	w, err := write(ctx, d.Store, command{stream: MerchantStream(merchantID), meta: &meta,
		attempt: func() (*state, func() ([]domain.Event, error)) {
			m := &domain.Merchant{}
			return newState(m.Apply), func() ([]domain.Event, error) { return decide(m) }
		}})
	return w, err
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

// Handle errors: domain.ErrNotFound. A retry (the same command id) answers
// with the rotation it recorded, without the secret key, which was shown once.
func (h RotateKeysHandler) Handle(ctx context.Context, c RotateKeys) (RotatedKeys, error) {
	creds, keys, err := newCredentials()
	if err != nil {
		return RotatedKeys{}, err
	}
	w, err := merchantCommand(ctx, h.d, c.CommandID, c.MerchantID, func(m *domain.Merchant) ([]domain.Event, error) {
		ev, err := m.RotateKeys(keys, h.d.Now())
		return []domain.Event{ev}, err
	})
	if err != nil {
		return RotatedKeys{}, err
	}
	if w.replayed { // the secret key is shown once: the log holds its hash
		if ev, ok := w.events[0].(domain.APIKeysRotated); ok {
			return RotatedKeys{PublishableKey: ev.PublishableKey, Position: w.res.Position}, nil
		}
	}
	return RotatedKeys{SecretKey: creds.SecretKey, PublishableKey: creds.PublishableKey, Position: w.res.Position}, nil
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
	w, err := merchantCommand(ctx, h.d, c.CommandID, c.MerchantID, func(m *domain.Merchant) ([]domain.Event, error) {
		ev, err := m.RotateWebhookSecret(clear, h.d.Now())
		ev.WebhookSecretSealed = sealed
		return []domain.Event{ev}, err
	})
	if err != nil {
		return RotatedWebhookSecret{}, err
	}
	if w.replayed { // shown once: a sealed secret is not shown again
		if ev, ok := w.events[0].(domain.WebhookSecretRotated); ok {
			return RotatedWebhookSecret{WebhookSecret: ev.WebhookSecret, Position: w.res.Position}, nil
		}
	}
	return RotatedWebhookSecret{WebhookSecret: secret, Position: w.res.Position}, nil
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
	w, err := write(ctx, h.d.Store, command{stream: MerchantStream(c.MerchantID), meta: &meta, attempt: func() (*state, func() ([]domain.Event, error)) {
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
		return newState(apply), func() ([]domain.Event, error) {
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
	}})
	if err != nil {
		return false, eventstore.Position{}, err
	}
	return len(w.events) > 0, w.res.Position, nil
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
	w, err := merchantCommand(ctx, h.d, c.CommandID, c.MerchantID, func(m *domain.Merchant) ([]domain.Event, error) {
		return m.ChangeSettings(c.Patch, h.d.Assets, h.d.Now())
	})
	return w.res.Position, err
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
	w, err := merchantCommand(ctx, h.d, c.CommandID, c.MerchantID, func(m *domain.Merchant) ([]domain.Event, error) {
		ev, err := m.SetPayoutSettings(c.Settings, h.d.Assets, h.checkAddress, h.d.Now())
		return []domain.Event{ev}, err
	})
	return w.res.Position, err
}
