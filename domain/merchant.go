package domain

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// PayoutMode says whether confirmed payments are paid out one by one or accrue.
type PayoutMode string

const (
	PayoutInstant PayoutMode = "instant"
	PayoutManual  PayoutMode = "manual"
)

// PayoutSettings of one asset.
type PayoutSettings struct {
	Asset            string     `json:"asset"`
	PayoutAddress    string     `json:"payout_address"`
	Mode             PayoutMode `json:"mode"`
	InstantMinAmount Amount     `json:"instant_min_amount"`
}

// Merchant is the aggregate behind a merchant-<id> stream.
type Merchant struct {
	id             string
	name           string
	webhookURL     string
	consolidateTo  string
	branding       Branding
	secretKeyHash  string
	publishableKey string
	webhookSecret  string
	payouts        map[string]PayoutSettings
	registered     bool
}

// MerchantKeys are freshly generated credentials; only the hash of the
// secret key is ever stored.
type MerchantKeys struct {
	SecretKeyHash  string
	PublishableKey string
	WebhookSecret  string
}

const (
	maxNameLen = 200
	maxURLLen  = 2048
)

// RegisterMerchant validates a sign-up. Errors: ErrValidation.
func RegisterMerchant(id, name, webhookURL string, keys MerchantKeys, now time.Time) (MerchantRegistered, error) {
	name = strings.TrimSpace(name)
	if err := validateName(name); err != nil {
		return MerchantRegistered{}, err
	}
	if err := ValidateWebhookURL(webhookURL); err != nil {
		return MerchantRegistered{}, err
	}
	return MerchantRegistered{
		MerchantID: id, Name: name, WebhookURL: webhookURL,
		SecretKeyHash: keys.SecretKeyHash, PublishableKey: keys.PublishableKey, WebhookSecret: keys.WebhookSecret,
		RegisteredAt: now.UTC(),
	}, nil
}

func validateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: name is required", ErrValidation)
	}
	return ValidateText("name", name, maxNameLen)
}

// ValidateWebhookURL accepts "" (no webhooks) or an absolute http(s) URL.
// Which hosts may be called is the delivery worker's decision.
func ValidateWebhookURL(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > maxURLLen {
		return fmt.Errorf("%w: webhook_url is longer than %d characters", ErrValidation, maxURLLen)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("%w: webhook_url must be an absolute http or https URL without credentials", ErrValidation)
	}
	return nil
}

// Apply folds an event of the merchant's stream into its state.
func (m *Merchant) Apply(e Event) {
	switch e := e.(type) {
	case MerchantRegistered:
		*m = Merchant{id: e.MerchantID, name: e.Name, webhookURL: e.WebhookURL, secretKeyHash: e.SecretKeyHash,
			publishableKey: e.PublishableKey, webhookSecret: e.WebhookSecret, payouts: map[string]PayoutSettings{}, registered: true}
	case APIKeysRotated:
		m.secretKeyHash, m.publishableKey = e.SecretKeyHash, e.PublishableKey
	case WebhookSecretRotated:
		m.webhookSecret = e.WebhookSecret
	case AccountSettingsChanged:
		m.webhookURL, m.consolidateTo, m.branding = e.WebhookURL, e.ConsolidateTo, e.Branding
	case PayoutSettingsChanged:
		m.payouts[e.Asset] = e.PayoutSettings
	}
}

func (m *Merchant) Registered() bool      { return m.registered }
func (m *Merchant) ConsolidateTo() string { return m.consolidateTo }
func (m *Merchant) Payout(asset string) (PayoutSettings, bool) {
	p, ok := m.payouts[asset]
	return p, ok
}

func (m *Merchant) mustExist() error {
	if !m.registered {
		return fmt.Errorf("merchant: %w", ErrNotFound)
	}
	return nil
}

// RotateKeys replaces both API keys at once.
func (m *Merchant) RotateKeys(keys MerchantKeys, now time.Time) (APIKeysRotated, error) {
	if err := m.mustExist(); err != nil {
		return APIKeysRotated{}, err
	}
	return APIKeysRotated{MerchantID: m.id, SecretKeyHash: keys.SecretKeyHash, PublishableKey: keys.PublishableKey, RotatedAt: now.UTC()}, nil
}

// RotateWebhookSecret replaces the webhook signing secret.
func (m *Merchant) RotateWebhookSecret(secret string, now time.Time) (WebhookSecretRotated, error) {
	if err := m.mustExist(); err != nil {
		return WebhookSecretRotated{}, err
	}
	return WebhookSecretRotated{MerchantID: m.id, WebhookSecret: secret, RotatedAt: now.UTC()}, nil
}

// AccountPatch holds the fields a PATCH sets; nil leaves a field as it is,
// a pointer to "" clears it.
type AccountPatch struct {
	WebhookURL    *string
	ConsolidateTo *string
	BrandingPatch
}

// ChangeSettings applies a patch. It returns no event when nothing changes.
// Errors: ErrValidation, ErrUnsupportedAsset.
func (m *Merchant) ChangeSettings(p AccountPatch, assets Assets, now time.Time) ([]Event, error) {
	if err := m.mustExist(); err != nil {
		return nil, err
	}
	next := AccountSettingsChanged{MerchantID: m.id, WebhookURL: m.webhookURL, ConsolidateTo: m.consolidateTo, ChangedAt: now.UTC()}
	branding, err := p.BrandingPatch.apply(m.branding)
	if err != nil {
		return nil, err
	}
	next.Branding = branding
	if p.WebhookURL != nil {
		if err := ValidateWebhookURL(*p.WebhookURL); err != nil {
			return nil, err
		}
		next.WebhookURL = *p.WebhookURL
	}
	if p.ConsolidateTo != nil {
		if *p.ConsolidateTo != "" {
			if _, err := assets.Lookup(*p.ConsolidateTo); err != nil {
				return nil, err
			}
		}
		next.ConsolidateTo = *p.ConsolidateTo
	}
	if next.WebhookURL == m.webhookURL && next.ConsolidateTo == m.consolidateTo && next.Branding == m.branding {
		return nil, nil
	}
	return []Event{next}, nil
}

// AddressCheck validates a payout address for a chain; chain code supplies it.
type AddressCheck func(chain Chain, address string) error

// SetPayoutSettings replaces one asset's payout settings.
// Errors: ErrValidation, ErrUnsupportedAsset, ErrInvalidAmount.
func (m *Merchant) SetPayoutSettings(s PayoutSettings, assets Assets, checkAddress AddressCheck, now time.Time) (PayoutSettingsChanged, error) {
	if err := m.mustExist(); err != nil {
		return PayoutSettingsChanged{}, err
	}
	asset, err := assets.Lookup(s.Asset)
	if err != nil {
		return PayoutSettingsChanged{}, err
	}
	if s.Mode != PayoutInstant && s.Mode != PayoutManual {
		return PayoutSettingsChanged{}, fmt.Errorf("%w: mode must be instant or manual", ErrValidation)
	}
	if s.PayoutAddress == "" && s.Mode == PayoutInstant {
		return PayoutSettingsChanged{}, fmt.Errorf("%w: instant payouts need a payout_address", ErrValidation)
	}
	if s.PayoutAddress != "" {
		if err := checkAddress(asset.Chain, s.PayoutAddress); err != nil {
			return PayoutSettingsChanged{}, fmt.Errorf("%w: payout_address: %v", ErrValidation, err)
		}
	}
	if s.InstantMinAmount.IsNegative() {
		return PayoutSettingsChanged{}, fmt.Errorf("%w: instant_min_amount is negative", ErrInvalidAmount)
	}
	if _, err := s.InstantMinAmount.BaseUnits(asset.Decimals); err != nil {
		return PayoutSettingsChanged{}, err
	}
	return PayoutSettingsChanged{MerchantID: m.id, PayoutSettings: s, ChangedAt: now.UTC()}, nil
}
