package httpapi

import (
	"github.com/go-chi/chi/v5"
)

// routes lists every endpoint. Reading down a route's middleware says who
// may call it: public routes are rate-limited per IP; the rest authenticate
// (401), then anyKey or secretOnly decide the key type (403); mutations
// then check the body's type (415) and honour Idempotency-Key (in the
// merchant's secret or publishable key space; sign-up never replays).
//
// Keep openapi.json in step: TestOpenAPIListsEveryRoute walks this router.
func (s *server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(s.recoverer, securityHeaders, s.limitBody)
	r.NotFound(notFound)
	r.MethodNotAllowed(methodNotAllowed(r))

	// Public: no key. Each is limited per client IP, in a bucket of its own.
	r.With(s.limitIP(s.public, "openapi")).Get("/v1/openapi.json", serveOpenAPI)
	// Sign-up ignores Idempotency-Key: its secrets are shown once, to one
	// caller, so no answer of it is ever stored to be replayed (clients
	// behind one proxy share an IP, the only scope a key could have here).
	r.With(s.limitIP(s.signup, "signup"), requireJSON).Post("/v1/merchants", s.createMerchant)
	r.With(s.limitIP(s.public, "public")).Get("/v1/public/invoices/{id}", s.publicInvoice)
	// Logging in is not idempotent-keyed: it writes nothing, and its
	// answer (a cookie) must not be stored.
	r.With(s.limitIP(s.public, "login"), requireJSON).Post("/v1/sessions", s.createSession)
	// Signing out writes (the session ends in the store). With ?all=true
	// it authenticates too, and counts against the key's limit as well.
	r.With(s.limitIP(s.public, "logout")).Delete("/v1/sessions", s.deleteSession)

	r.Group(func(r chi.Router) {
		r.Use(s.authenticate)

		// Secret or publishable key.
		r.Get("/v1/assets", s.listAssets)
		r.With(requireJSON, s.idempotent).Post("/v1/invoices", s.createInvoice)
		r.Get("/v1/invoices/{id}", s.getInvoice)
		r.Get("/v1/quote", s.getQuote)

		// Secret key (or a dashboard session) only.
		r.Group(func(r chi.Router) {
			r.Use(secretOnly)
			r.Get("/v1/invoices", s.listInvoices)
			r.Get("/v1/account", s.getAccount)
			r.With(requireJSON, s.idempotent).Patch("/v1/account", s.patchAccount)
			r.With(requireJSON, s.idempotent).Post("/v1/account/keys/rotate", s.rotateKeys)
			r.With(requireJSON, s.idempotent).Post("/v1/account/webhook-secret/rotate", s.rotateWebhookSecret)
			r.Get("/v1/balance", s.getBalance)
			r.Get("/v1/statements", s.getStatement)
			r.Get("/v1/payout-settings", s.getPayoutSettings)
			r.With(requireJSON, s.idempotent).Put("/v1/payout-settings", s.putPayoutSettings)
			r.With(requireJSON, s.idempotent).Post("/v1/withdrawals", s.createWithdrawal)
			r.Get("/v1/payouts", s.listPayouts)
			r.Get("/v1/payouts/{id}", s.getPayout)
			r.With(requireJSON, s.idempotent).Post("/v1/payouts/{id}/cancel", s.cancelPayout)
			r.With(requireJSON, s.idempotent).Post("/v1/invoices/{id}/refunds", s.createRefund)
			r.Get("/v1/invoices/{id}/refunds", s.listRefunds)
			r.With(requireJSON, s.idempotent).Post("/v1/consolidate", s.consolidate)
			// CSV exports for a period, streamed (exports.go).
			r.Get("/v1/exports/invoices.csv", s.exportInvoices())
			r.Get("/v1/exports/payouts.csv", s.exportPayouts())
			r.Get("/v1/exports/ledger.csv", s.exportLedger())

			// Webhook deliveries: 503 on a server without a webhook worker.
			r.Group(func(r chi.Router) {
				r.Use(s.webhooksAvailable)
				r.Get("/v1/webhooks/deliveries", s.listDeliveries)
				r.Get("/v1/webhooks/deliveries/{id}", s.getDelivery)
				r.With(requireJSON, s.idempotent).Post("/v1/webhooks/deliveries/{id}/retry", s.retryDelivery)
				r.With(requireJSON, s.idempotent).Post("/v1/webhooks/test", s.sendTestWebhook)
			})

			// The event feed: 503 on a server without one.
			r.Group(func(r chi.Router) {
				r.Use(s.eventsAvailable)
				r.Get("/v1/events", s.listEvents)
				r.Get("/v1/events/stream", s.streamEvents)
			})
		})
	})
	return r
}
