package httpapi

import (
	"net/http"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
)

type payoutSettingsJSON struct {
	Asset            string  `json:"asset"`
	PayoutAddress    *string `json:"payout_address"`
	Mode             string  `json:"mode"`
	InstantMinAmount string  `json:"instant_min_amount"`
}

type putPayoutSettingsRequest struct {
	Asset string `json:"asset"`
	// PayoutAddress is optional; null (as GET shows no address) or absent
	// means none: a GET result sent back as it is sets the same.
	PayoutAddress nullableString `json:"payout_address"`
	Mode          string         `json:"mode"`
	// InstantMinAmount is optional: absent means no minimum ("0").
	InstantMinAmount *amountString `json:"instant_min_amount"`
}

// getPayoutSettings is GET /v1/payout-settings.
func (s *server) getPayoutSettings(w http.ResponseWriter, r *http.Request) {
	acc, err := s.d.Reader.Account(r.Context(), mustPrincipal(r).merchantID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listJSON[payoutSettingsJSON]{Data: renderPayoutSettings(acc.PayoutSettings)})
}

// putPayoutSettings is PUT /v1/payout-settings: replaces one asset's
// settings and answers with them.
func (s *server) putPayoutSettings(w http.ResponseWriter, r *http.Request) {
	var req putPayoutSettingsRequest
	if err := decodeJSON(r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	asset, err := s.d.Assets.Lookup(req.Asset)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	minAmount := domain.Amount{}
	if req.InstantMinAmount != nil {
		if minAmount, err = domain.ParseAmount(string(*req.InstantMinAmount), asset.Decimals); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	settings := domain.PayoutSettings{Asset: asset.Code, PayoutAddress: req.PayoutAddress.Value, Mode: domain.PayoutMode(req.Mode), InstantMinAmount: minAmount}
	pos, err := s.d.Commands.SetPayoutSettings.Handle(r.Context(), commands.SetPayoutSettings{
		CommandID: s.commandID(r), MerchantID: mustPrincipal(r).merchantID, Settings: settings,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.waitForRead(r.Context(), pos)
	writeJSON(w, http.StatusOK, renderPayoutSetting(settings))
}

func renderPayoutSettings(list []domain.PayoutSettings) []payoutSettingsJSON {
	out := make([]payoutSettingsJSON, 0, len(list))
	for _, p := range list {
		out = append(out, renderPayoutSetting(p))
	}
	return out
}

func renderPayoutSetting(p domain.PayoutSettings) payoutSettingsJSON {
	return payoutSettingsJSON{Asset: p.Asset, PayoutAddress: nullable(p.PayoutAddress), Mode: string(p.Mode), InstantMinAmount: p.InstantMinAmount.String()}
}
