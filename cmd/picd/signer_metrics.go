package main

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acceptcryptohere/gateway/chain/custody"
)

// meteredSigner counts and times the senders' signing requests, whether
// the signer runs in this process or behind PIC_SIGNER.
type meteredSigner struct {
	next     custody.Signer
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	now      func() time.Time
}

func newMeteredSigner(next custody.Signer) *meteredSigner {
	return &meteredSigner{next: next, now: time.Now,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "picd_signer_requests_total",
			Help: "Signing requests by asset (the chain when the request names none), purpose and result (signed, refused, held, error)."},
			[]string{"asset", "purpose", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "picd_signer_request_duration_seconds",
			Help: "Signing request latency by purpose.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)},
			[]string{"purpose"}),
	}
}

// register exposes the signer's metrics on reg.
func (s *meteredSigner) register(reg prometheus.Registerer) { reg.MustRegister(s.requests, s.latency) }

// Sign implements custody.Signer.
func (s *meteredSigner) Sign(ctx context.Context, req custody.Request) ([]byte, error) {
	start := s.now()
	raw, err := s.next.Sign(ctx, req)
	s.latency.WithLabelValues(req.Purpose).Observe(s.now().Sub(start).Seconds())
	asset := req.Asset
	if asset == "" {
		asset = string(req.Chain)
	}
	s.requests.WithLabelValues(asset, req.Purpose, signResult(err)).Inc()
	return raw, err
}

func signResult(err error) string {
	switch {
	case err == nil:
		return "signed"
	case custody.IsRefused(err):
		return "refused"
	case errors.Is(err, custody.ErrHeld):
		return "held"
	}
	return "error"
}
