package httpapi

import (
	"context"
	"net/http"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// accountJSON is GET /v1/account. usd_value and total_usd are null without
// a fresh oracle price: a made-up or stale price would be worse than none.
type accountJSON struct {
	MerchantID     string               `json:"merchant_id"`
	Name           string               `json:"name"`
	PublishableKey string               `json:"publishable_key"`
	WebhookURL     *string              `json:"webhook_url"`
	ConsolidateTo  *string              `json:"consolidate_to"`
	PayoutSettings []payoutSettingsJSON `json:"payout_settings"`
	Balances       []balanceJSON        `json:"balances"`
	TotalUSD       *string              `json:"total_usd"`
	Assets         []assetJSON          `json:"assets"`
	// The checkout's branding (issue #19); null when not set.
	DisplayName        *string `json:"display_name"`
	LogoURL            *string `json:"logo_url"`
	BrandColor         *string `json:"brand_color"`
	DefaultRedirectURL *string `json:"default_redirect_url"`
}

type patchAccountRequest struct {
	WebhookURL         nullableString `json:"webhook_url"`
	ConsolidateTo      nullableString `json:"consolidate_to"`
	DisplayName        nullableString `json:"display_name"`
	LogoURL            nullableString `json:"logo_url"`
	BrandColor         nullableString `json:"brand_color"`
	DefaultRedirectURL nullableString `json:"default_redirect_url"`
}

type rotatedKeysJSON struct {
	SecretKey      string `json:"secret_key"`
	PublishableKey string `json:"publishable_key"`
}

type rotatedWebhookSecretJSON struct {
	WebhookSecret string `json:"webhook_secret"`
}

// getAccount is GET /v1/account.
func (s *server) getAccount(w http.ResponseWriter, r *http.Request) {
	s.renderAccount(w, r, http.StatusOK)
}

// patchAccount is PATCH /v1/account: absent fields stay, null or "" clears.
func (s *server) patchAccount(w http.ResponseWriter, r *http.Request) {
	var req patchAccountRequest
	if err := decodeJSON(r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if u := req.WebhookURL.ptr(); u != nil {
		if err := s.checkWebhookURL(r.Context(), *u); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	pos, err := s.d.Commands.UpdateAccount.Handle(r.Context(), commands.UpdateAccount{
		CommandID: s.commandID(r), MerchantID: mustPrincipal(r).merchantID,
		Patch: domain.AccountPatch{WebhookURL: req.WebhookURL.ptr(), ConsolidateTo: req.ConsolidateTo.ptr(),
			BrandingPatch: domain.BrandingPatch{DisplayName: req.DisplayName.ptr(), LogoURL: req.LogoURL.ptr(),
				BrandColor: req.BrandColor.ptr(), DefaultRedirectURL: req.DefaultRedirectURL.ptr()}},
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.readable(w, r, pos) {
		return
	}
	s.renderAccount(w, r, http.StatusOK)
}

// rotateKeys is POST /v1/account/keys/rotate. The old keys stop working as
// soon as the projection applies the rotation, which we wait for. Every
// session of the merchant ends; a dashboard session that asked for the
// rotation gets a fresh one for the new key (keysRotated).
func (s *server) rotateKeys(w http.ResponseWriter, r *http.Request) {
	if err := decodeJSON(r, &struct{}{}, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	p := mustPrincipal(r)
	res, err := s.d.Commands.RotateKeys.Handle(r.Context(), commands.RotateKeys{CommandID: s.commandID(r), MerchantID: p.merchantID})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.waitForRead(r.Context(), res.Position)
	s.keysRotated(w, r, p, commands.HashSecretKey(res.SecretKey))
	writeJSON(w, http.StatusOK, rotatedKeysJSON{SecretKey: res.SecretKey, PublishableKey: res.PublishableKey})
}

// rotateWebhookSecret is POST /v1/account/webhook-secret/rotate.
func (s *server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	if err := decodeJSON(r, &struct{}{}, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.d.Commands.RotateWebhookSecret.Handle(r.Context(), commands.RotateWebhookSecret{
		CommandID: s.commandID(r), MerchantID: mustPrincipal(r).merchantID,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.waitForRead(r.Context(), res.Position)
	writeJSON(w, http.StatusOK, rotatedWebhookSecretJSON{WebhookSecret: res.WebhookSecret})
}

func (s *server) renderAccount(w http.ResponseWriter, r *http.Request, status int) {
	acc, balances, err := s.loadAccount(r.Context(), mustPrincipal(r).merchantID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rendered := s.renderBalances(r.Context(), balances)
	var total *string
	if s.d.Prices != nil {
		total = totalUSD(rendered)
	}
	writeJSON(w, status, accountJSON{
		MerchantID: acc.MerchantID, Name: acc.Name, PublishableKey: acc.PublishableKey,
		WebhookURL: nullable(acc.WebhookURL), ConsolidateTo: nullable(acc.ConsolidateTo),
		PayoutSettings: renderPayoutSettings(acc.PayoutSettings),
		Balances:       rendered,
		TotalUSD:       total,
		Assets:         renderAssets(s.d.Assets.List()),
		DisplayName:    nullable(acc.Branding.DisplayName), LogoURL: nullable(acc.Branding.LogoURL),
		BrandColor: nullable(acc.Branding.BrandColor), DefaultRedirectURL: nullable(acc.Branding.DefaultRedirectURL),
	})
}

func (s *server) loadAccount(ctx context.Context, merchantID string) (readapi.Account, []readapi.Balance, error) {
	acc, err := s.d.Reader.Account(ctx, merchantID)
	if err != nil {
		return readapi.Account{}, nil, err
	}
	balances, err := s.d.Reader.Balances(ctx, merchantID)
	return acc, balances, err
}
