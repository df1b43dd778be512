package httpapi

import (
	"net/http"

	"github.com/acceptcryptohere/gateway/commands"
)

type createMerchantRequest struct {
	Name       string `json:"name"`
	WebhookURL string `json:"webhook_url"`
}

// createMerchantResponse shows the secrets once; only the secret key's hash
// is stored anywhere.
type createMerchantResponse struct {
	MerchantID     string `json:"merchant_id"`
	SecretKey      string `json:"secret_key"`
	PublishableKey string `json:"publishable_key"`
	WebhookSecret  string `json:"webhook_secret"`
}

// createMerchant is POST /v1/merchants: sign-up without a key. Every call
// registers a new merchant under a fresh command id: an Idempotency-Key is
// ignored, because a replay would hand the secrets to whoever repeats the
// key and body (API.md: shown once, to one caller). A retry after a lost
// answer creates another merchant; the unused one holds nothing.
func (s *server) createMerchant(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.RegistrationOpen {
		s.writeError(w, r, errRegistration)
		return
	}
	var req createMerchantRequest
	if err := decodeJSON(r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.checkWebhookURL(r.Context(), req.WebhookURL); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.d.Commands.RegisterMerchant.Handle(r.Context(), commands.RegisterMerchant{
		CommandID: randomCommandID(), Name: req.Name, WebhookURL: req.WebhookURL,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The new keys must work on the very next request.
	s.waitForRead(r.Context(), res.Position)
	writeJSON(w, http.StatusCreated, createMerchantResponse{
		MerchantID: res.MerchantID, SecretKey: res.SecretKey, PublishableKey: res.PublishableKey, WebhookSecret: res.WebhookSecret,
	})
}
