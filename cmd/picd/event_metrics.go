package main

import (
	"encoding/json"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/webhooks"
)

// eventCounters counts deposits, invoice transitions and payout failures
// from the events the projections runner applies. It is a
// projections.Observer, so only the process that runs the projections (the
// leader) counts, and each event once: the runner applies a batch once,
// whatever the chain scan retried before recording it.
type eventCounters struct {
	deposits    *prometheus.CounterVec
	transitions *prometheus.CounterVec
	payouts     *prometheus.CounterVec
}

// depositOutcomes names the deposit events by the outcome they record.
var depositOutcomes = map[string]string{
	domain.TypeDepositDetected:  "seen",
	domain.TypeDepositConfirmed: "confirmed",
	domain.TypeDepositFinalized: "final",
	domain.TypeDepositReverted:  "reverted",
}

// invoiceStatuses names the invoice events by the status they enter.
var invoiceStatuses = map[string]domain.Status{
	domain.TypeInvoiceCreated:         domain.StatusNew,
	domain.TypeInvoiceAwaitingPayment: domain.StatusNew,
	domain.TypeInvoicePartiallyPaid:   domain.StatusPartiallyPaid,
	domain.TypeInvoiceConfirming:      domain.StatusConfirming,
	domain.TypeInvoicePaid:            domain.StatusPaid,
	domain.TypeInvoiceExpired:         domain.StatusExpired,
	domain.TypeInvoiceReverted:        domain.StatusReverted,
}

func newEventCounters() *eventCounters {
	c := &eventCounters{
		deposits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "picd_deposits_total",
			Help: "Deposit events recorded by asset and outcome (seen, confirmed, final, reverted); counted by the leader."},
			[]string{"asset", "outcome"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "picd_invoice_transitions_total",
			Help: "Invoice status changes by the status entered (new counts creations); counted by the leader."},
			[]string{"status"}),
		payouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "picd_payouts_failed_total",
			Help: "Payouts failed or canceled by asset and reason class; counted by the leader."},
			[]string{"asset", "reason"}),
	}
	return c
}

// register exposes the counters on reg.
func (c *eventCounters) register(reg prometheus.Registerer) {
	reg.MustRegister(c.deposits, c.transitions, c.payouts)
}

// Started implements projections.Observer.
func (c *eventCounters) Started() {}

// Stopped implements projections.Observer.
func (c *eventCounters) Stopped() {}

// Applied implements projections.Observer. Batches another runner applied
// (recs nil) are not seen here and so not counted.
func (c *eventCounters) Applied(recs []eventstore.RecordedEvent) {
	for _, rec := range recs {
		if status, ok := invoiceStatuses[rec.Type]; ok {
			c.transitions.WithLabelValues(string(status)).Inc()
			continue
		}
		outcome, deposit := depositOutcomes[rec.Type]
		if !deposit && rec.Type != domain.TypePayoutFailed && rec.Type != domain.TypePayoutCanceled {
			continue
		}
		var body struct {
			Asset  string `json:"asset"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal(rec.Data, &body) != nil {
			continue // the projections refuse such an event; nothing to count
		}
		switch {
		case deposit:
			c.deposits.WithLabelValues(body.Asset, outcome).Inc()
		case rec.Type == domain.TypePayoutCanceled:
			c.payouts.WithLabelValues(body.Asset, "canceled").Inc()
		default:
			c.payouts.WithLabelValues(body.Asset, payoutFailureClass(body.Reason)).Inc()
		}
	}
}

// payoutFailureClass maps a payout's free-text failure reason to one of a
// few labels, so the series stay bounded.
func payoutFailureClass(reason string) string {
	r := strings.ToLower(reason)
	switch {
	case strings.Contains(r, "not sent after"):
		return "not_sent_after_retries"
	case strings.Contains(r, "insufficient"):
		return "insufficient_funds"
	case strings.Contains(r, "address"):
		return "invalid_address"
	case strings.Contains(r, "revert") || strings.Contains(r, "failed on chain") || strings.Contains(r, "expired"):
		return "reverted"
	}
	return "other"
}

// registerWebhookAttempts exposes the worker's attempt counts by outcome.
func registerWebhookAttempts(reg prometheus.Registerer, c *webhooks.AttemptCounts) {
	for outcome, n := range map[string]*atomic.Int64{"delivered": &c.Delivered, "retry": &c.Retry, "failed": &c.Failed} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "picd_webhook_attempts_total",
			Help:        "Webhook delivery attempts this process recorded, by what they left the delivery as: delivered, retry (scheduled again), failed (for good).",
			ConstLabels: prometheus.Labels{"outcome": outcome}}, func() float64 { return float64(n.Load()) }))
	}
}
