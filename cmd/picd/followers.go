package main

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acceptcryptohere/gateway/follow"
)

// registerLoops exposes the log followers' counters and the supervisor's
// restarts: a follower whose errors climb, or a loop that keeps being
// restarted, is stuck behind something the logs name.
func (o *observability) registerLoops(followers map[string]*follow.Metrics, loops []loop) {
	for name, m := range followers {
		labels := prometheus.Labels{"follower": name}
		o.registry.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "picd_follower_applied_total", ConstLabels: labels,
				Help: "Events the log follower has handled since the process started."}, func() float64 { return float64(m.Applied()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "picd_follower_errors_total", ConstLabels: labels,
				Help: "Batches the log follower failed (each is retried) since the process started."}, func() float64 { return float64(m.Errors()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "picd_follower_position", ConstLabels: labels,
				Help: "Commit part of the log position the follower has reached in this process (0 before its first batch)."},
				func() float64 { return float64(m.Position().Commit) }),
		)
	}
	for _, l := range loops {
		if l.restarts == nil {
			continue
		}
		restarts := l.restarts
		o.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "picd_loop_restarts_total",
			ConstLabels: prometheus.Labels{"loop": l.name}, Help: "Times the supervisor restarted a failed background loop."},
			func() float64 { return float64(restarts.Load()) }))
	}
}

// withRestartCounters gives every loop its restart counter.
func withRestartCounters(loops []loop) []loop {
	for i := range loops {
		if loops[i].restarts == nil {
			loops[i].restarts = new(atomic.Int64)
		}
	}
	return loops
}
