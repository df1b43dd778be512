package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/acceptcryptohere/gateway/webhooks"
)

// Webhooks is the delivery log and the test sender the webhook endpoints
// use; *webhooks.Worker implements it.
type Webhooks interface {
	// ListDeliveries errors: domain.ErrValidation, domain.ErrNotFound (cursor).
	ListDeliveries(ctx context.Context, merchantID string, f webhooks.DeliveryFilter) ([]webhooks.Delivery, bool, error)
	// DeliveryByID errors: domain.ErrNotFound (also another merchant's).
	DeliveryByID(ctx context.Context, merchantID, id string) (webhooks.Delivery, error)
	// Retry errors: domain.ErrNotFound (also another merchant's).
	Retry(ctx context.Context, merchantID, id string) (webhooks.Delivery, error)
	// SendTest errors: domain.ErrNotFound, domain.ErrValidation (no webhook_url).
	SendTest(ctx context.Context, merchantID string) (webhooks.Attempt, error)
	// CheckURL applies the delivery guard's address rules to a webhook URL
	// being saved. Errors: domain.ErrValidation.
	CheckURL(ctx context.Context, rawURL string) error
}

// checkWebhookURL refuses, when a webhook URL is saved, what the delivery
// worker would refuse to connect to (loopback, private, link-local, as a
// literal or as a name that resolves there now), unless the operator allows
// private addresses. A server without a worker sends no webhooks: nothing
// to check.
func (s *server) checkWebhookURL(ctx context.Context, rawURL string) error {
	if s.d.Webhooks == nil || rawURL == "" {
		return nil
	}
	return s.d.Webhooks.CheckURL(ctx, rawURL)
}

// errNoWebhooks answers the webhook endpoints of a server built without
// Deps.Webhooks.
var errNoWebhooks = errorf(http.StatusServiceUnavailable, "service_unavailable", "webhook deliveries are not available on this server")

type deliveryListJSON struct {
	Data    []webhooks.DeliveryJSON `json:"data"`
	HasMore bool                    `json:"has_more"`
}

type webhookTestJSON struct {
	Delivered bool                 `json:"delivered"`
	Attempt   webhooks.AttemptJSON `json:"attempt"`
}

// webhooksAvailable answers 503 when the server has no webhook worker. It
// runs after authentication, so a bad key is still a 401 and a publishable
// key a 403, and before idempotency, so nothing is stored.
func (s *server) webhooksAvailable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.d.Webhooks == nil {
			s.writeError(w, r, errNoWebhooks)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// listDeliveries is GET /v1/webhooks/deliveries?invoice_id=&status=&limit=&starting_after=,
// newest first.
func (s *server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	f, err := parseDeliveryFilter(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, hasMore, err := s.d.Webhooks.ListDeliveries(r.Context(), mustPrincipal(r).merchantID, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := deliveryListJSON{Data: make([]webhooks.DeliveryJSON, 0, len(page)), HasMore: hasMore}
	for _, d := range page {
		out.Data = append(out.Data, d.JSON())
	}
	writeJSON(w, http.StatusOK, out)
}

func parseDeliveryFilter(r *http.Request) (webhooks.DeliveryFilter, error) {
	q := r.URL.Query()
	f := webhooks.DeliveryFilter{InvoiceID: q.Get("invoice_id"), Limit: defaultListLimit, StartingAfter: q.Get("starting_after")}
	if v := q.Get("status"); v != "" {
		st, err := webhooks.ParseStatus(v)
		if err != nil {
			return f, err
		}
		f.Status = st
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return f, errorf(http.StatusBadRequest, "validation_error", "limit must be an integer from 1 to "+strconv.Itoa(maxListLimit))
		}
		f.Limit = n
	}
	return f, nil
}

// getDelivery is GET /v1/webhooks/deliveries/{id}; another merchant's is 404.
func (s *server) getDelivery(w http.ResponseWriter, r *http.Request) {
	d, err := s.d.Webhooks.DeliveryByID(r.Context(), mustPrincipal(r).merchantID, chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d.JSON())
}

// retryDelivery is POST /v1/webhooks/deliveries/{id}/retry: the delivery
// becomes pending and due now, whatever its status; the answer shows it so.
func (s *server) retryDelivery(w http.ResponseWriter, r *http.Request) {
	if err := decodeJSON(r, &struct{}{}, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	d, err := s.d.Webhooks.Retry(r.Context(), mustPrincipal(r).merchantID, chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d.JSON())
}

// sendTestWebhook is POST /v1/webhooks/test: one signed test event to the
// merchant's webhook_url, sent before answering. An endpoint that fails is
// not an error of this request: the answer says delivered false and shows
// the attempt.
func (s *server) sendTestWebhook(w http.ResponseWriter, r *http.Request) {
	if err := decodeJSON(r, &struct{}{}, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := s.d.Webhooks.SendTest(r.Context(), mustPrincipal(r).merchantID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, webhookTestJSON{Delivered: a.OK(), Attempt: a.JSON()})
}
