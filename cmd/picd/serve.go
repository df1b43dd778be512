package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/follow"
	"github.com/acceptcryptohere/gateway/httpapi"
	"github.com/acceptcryptohere/gateway/opstore"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/web"
	"github.com/acceptcryptohere/gateway/webhooks"
)

// keyCacheSize bounds the API keys kept in memory (a full cache starts
// again empty).
const keyCacheSize = 100_000

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// serve runs the gateway until ctx ends, then shuts down gracefully:
// in-flight requests finish, background loops stop, stores close.
func serve(ctx context.Context, cfg Config, logOut io.Writer) error {
	// Collect garbage half as often as Go's default unless GOGC says
	// otherwise: picd's heap is small, and fewer collections measured a
	// higher invoice rate on Postgres (figures in the commit message).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	log := newLogger(logOut)
	if cfg.simulatorImplied {
		log.Warn("quick start: no chain node is configured, so every chain is simulated (PIC_SIMULATOR=true implied) with its operator endpoints /v1/sim/*; configure PIC_BTC_RPC_HOST, PIC_ETH_RPC_URL and PIC_TRON_API_URL for real chains")
	} else if sims := simulatedChains(cfg); len(sims) > 0 {
		log.Warn("simulated chains (PIC_SIMULATOR=true): not for production", "chains", sims)
	}
	if err := privateDataDir(cfg.DataDir); err != nil {
		return err
	}
	cfg.idleInTx = cfg.LeaderLease
	b, err := openBackend(ctx, cfg, log)
	if err != nil {
		return unreachable(err)
	}
	defer b.close()
	if b.db.Dialect == sqldb.SQLite {
		release, err := markServing(embeddedPath(cfg))
		if err != nil {
			return err
		}
		defer release()
	}
	leader, err := newLeadership(cfg, b, log)
	if err != nil {
		return err
	}
	secretBox, err := webhookSecretBox(ctx, cfg, b.db, log)
	if err != nil {
		return err
	}

	sessionSecret, err := secretFile(cfg.SessionSecret, filepath.Join(cfg.DataDir, "session.key"), log)
	if err != nil {
		return err
	}
	wallet, rawSigner, err := custodyFor(ctx, cfg, log)
	if err != nil {
		return err
	}
	signer := newMeteredSigner(rawSigner)
	assets, err := quickStartAssets(cfg, domain.DefaultAssets())
	if err != nil {
		return err
	}
	if assets, err = withContracts(cfg, assets); err != nil {
		return err
	}
	assets, ethChainID, err := ethereumAssets(ctx, cfg, assets, log)
	if err != nil {
		return err
	}

	prices, err := priceOracle(cfg)
	if err != nil {
		return err
	}

	now := time.Now
	runner := projections.NewRunner(b.store, b.db, log)
	runner.Now = now
	reader := readapi.NewSQL(b.db)
	// API keys from memory while this process runs the projectors; a
	// Postgres follower looks every key up.
	reader.Keys = readapi.NewKeyCache(keyCacheSize)
	reader.Keys.Live = leader.Held
	runner.Observe(reader.Keys)
	reader.Accounts = readapi.NewAccountCache(keyCacheSize)
	reader.Accounts.Live = leader.Held
	runner.Observe(reader.Accounts)
	eventCounts := newEventCounters()
	runner.Observe(eventCounts)
	// The leader's background commands append under its fence; HTTP's do not.
	appendStore := b.store
	if cfg.Store != "sqlite" {
		appendStore = follow.FenceAppends(b.store, b.db.Write)
	}
	deps := commands.Deps{Store: appendStore, Assets: assets, Now: now, NewID: commands.NewIDGenerator(now),
		Credits: readapi.Credits{SQL: reader, Wait: runner}, Prices: prices, Accounts: reader, WebhookSecrets: secretBox}
	// New addresses come from the current seed generation.
	addresses := commands.NewIndexAllocator(deps, wallet.Deriver())
	addresses.KeyNumber = wallet.Current
	// No invoice address on a chain whose node is of another chain.
	handlers := commands.New(deps, guardAddresses(addresses, b.db, chainScans(cfg), now), hd.AddressCheck(wallet.BitcoinParams()))
	senders, senderLoops, err := payoutSenders(ctx, cfg, b, wallet, signer, addresses, assets, prices, chain.RecordCostWith(handlers.RecordNetworkCost), log)
	if err != nil {
		return err
	}
	chains, err := startWatchers(ctx, cfg, b.db, handlers, reader, assets, wallet, log)
	if err != nil {
		return err
	}
	processor := chain.NewProcessor(b.store, b.db, handlers, assets, senders, chain.ProcessorConfig{Logger: log, CheckNode: checkPayoutNode(chains.nodes)})
	settlement := chain.NewSettlement(b.store, b.db, handlers, log)
	settlement.SetWaits(now, cfg.ConversionMaxWait)

	worker := webhooks.NewWorker(b.db, webhooks.Config{AllowPrivate: cfg.WebhookAllowPrivate, Secrets: secretBox, Logger: log})
	// Closed when shutdown starts, so open event streams end at once.
	streamsDone := make(chan struct{})
	// Set while a rebuild inside this process runs its long statements on
	// SQLite's one writer (picd projections rebuild --gateway).
	var rebuildHoldsWriter atomic.Bool
	api := httpapi.New(httpapi.Config{
		RegistrationOpen: cfg.Registration == "open", SessionSecret: sessionSecret, BaseURL: cfg.BaseURL,
		SecureCookies: cfg.SecureCookies, ClientIPHeader: cfg.ClientIPHeader, KeyRatePerMinute: cfg.KeyRatePerMinute,
		SignupRatePerMinute: cfg.SignupRatePerMinute, PublicRatePerMinute: cfg.PublicRatePerMinute,
	}, httpapi.Deps{Commands: handlers, Reader: reader, Wait: runner, Idempotency: opstore.NewIdempotency(b.db), Sessions: opstore.NewSessions(b.db), Webhooks: worker,
		Events: reader, Statements: readapi.LogStatements{Store: b.store}, ShuttingDown: streamsDone, Prices: prices,
		Assets: assets, Now: now, Logger: log, WriterBusy: rebuildHoldsWriter.Load})

	subscriber := webhooks.NewSubscriber(b.store, b.db, webhooks.SubscriberConfig{BaseURL: cfg.BaseURL, Notify: worker.Notify, Logger: log})

	// Background loops stop only after the HTTP server has drained, so no
	// accepted request is left waiting on a projection that stopped. Each
	// runs under supervise: a failed loop is logged and restarted.
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	loops := []loop{
		{name: "projections", run: runner.Run},
		{name: "invoice expiry", run: func(ctx context.Context) error {
			expireLoop(ctx, reader, handlers.ExpireInvoice, now, log)
			return ctx.Err()
		}},
		{name: "webhook subscriber", run: subscriber.Run},
		{name: "webhook worker", run: worker.Run},
		{name: "webhook log pruning", run: func(ctx context.Context) error {
			return worker.RunPruning(ctx, time.Duration(cfg.WebhookLogDays)*24*time.Hour, time.Hour)
		}},
		{name: "payout processor", run: processor.Run},
		{name: "settlement", run: settlement.Run},
		{name: "webhook secrets re-key", run: func(ctx context.Context) error {
			rekeyLegacySecrets(ctx, b.store, runner, b.db, commands.NewRekeyWebhookSecretHandler(deps), log)
			return nil // once per start; it logs its own errors
		}},
	}
	loops = append(loops, chains.loops...)
	loops = withRestartCounters(append(loops, senderLoops...))
	background := supervised(loops, log, now)
	if cfg.Store == "sqlite" {
		// The embedded store is one process: it always leads.
		for _, loop := range background {
			wg.Add(1)
			go func() { defer wg.Done(); loop(bg) }()
		}
	} else {
		// Many processes may serve HTTP; one at a time runs the background
		// work. The others follow the projections' checkpoints so their
		// reads after writes still wait for the right position.
		wg.Add(2)
		go func() { defer wg.Done(); leader.run(bg, background) }()
		go func() { defer wg.Done(); runner.Follow(bg, 5*time.Millisecond) }()
	}
	defer func() { stopBG(); wg.Wait() }()

	if cfg.DebugListen != "" {
		debug := http.NewServeMux()
		debug.HandleFunc("/debug/pprof/", pprof.Index)
		debug.HandleFunc("/debug/pprof/profile", pprof.Profile)
		debug.HandleFunc("/debug/pprof/trace", pprof.Trace)
		go func() { log.Info("pprof", "err", http.ListenAndServe(cfg.DebugListen, debug)) }()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	obs := newObservability(log)
	scans := chainScans(cfg)
	obs.registerStateGauges(b.store, runner, b.db, scans)
	registerUnmatchedMetrics(obs.registry, b.db, assets)
	obs.registerLeader(leader)
	eventCounts.register(obs.registry)
	registerWebhookAttempts(obs.registry, worker.Attempts())
	signer.register(obs.registry)
	obs.registry.MustRegister(newChainHeads(b.db, scans), newPriceAges(prices, assets, time.Now))
	obs.registerSettlementGauges(b.db, time.Now)
	if cfg.TronAPIURL != "" {
		registerTronMetrics(obs.registry)
	}
	obs.registerLoops(map[string]*follow.Metrics{"projections": runner.Metrics(), "webhooks": subscriber.Metrics(),
		"settlement": settlement.Metrics(), "payout_intake": processor.IntakeMetrics()}, loops)
	if cfg.MetricsListen != "" {
		stopMetrics := serveMetrics(cfg.MetricsListen, obs, log)
		defer stopMetrics()
	}
	// The unauthenticated routes outside /v1 get the public routes' per-IP
	// limit (each in a bucket of its own); /healthz, a constant answer for
	// probes, and the static files are exempt.
	publicLimit := httpapi.NewIPLimiter(cfg.PublicRatePerMinute, cfg.ClientIPHeader, now)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"ok"}`)
	})
	mux.Handle("GET /readyz", publicLimit.Limit("readyz", readiness(b, runner, scans, leader, now)))
	mux.Handle("/v1/sim/", obs.wrap(chains.routes))
	opToken, err := operatorToken(cfg)
	if err != nil {
		return err
	}
	mux.Handle("/v1/operator/events", obs.wrap(httpapi.NewOperatorFeed(httpapi.OperatorFeedConfig{Store: b.store, Token: opToken, Logger: log})))
	mux.Handle("/v1/operator/projections/rebuild", obs.wrap(httpapi.NewOperatorRebuild(httpapi.OperatorRebuildConfig{
		Token: opToken, Check: projections.CheckRebuildNames, Context: ctx, Now: now, Logger: log,
		Lock: func(ctx context.Context) (func(), bool, error) { return projections.TryLockRebuild(ctx, b.db) },
		Run: func(ctx context.Context, names []string, progress func(int, int64), phase func(string, time.Duration)) error {
			defer rebuildHoldsWriter.Store(false)
			return projections.RebuildWith(ctx, b.store, b.db, names, projections.RebuildOptions{Now: now, Phase: phase, Locked: true,
				Progress: func(p projections.RebuildProgress) { progress(p.Applied, p.Total) },
				// Yield comes before each statement that holds the writer for seconds.
				Yield: func(ctx context.Context) {
					rebuildHoldsWriter.Store(b.db.Dialect == sqldb.SQLite)
					yieldToProjections(ctx, runner, now)
				}})
		}})))
	site := obs.wrap(web.New(web.Config{Invoices: reader, Branding: reader, Assets: assets, EthereumChainID: ethChainID, Now: now, Logger: log, Limiter: publicLimit,
		Explorers: explorers(cfg)}))
	mux.Handle("/pay/", site)
	mux.Handle("/dashboard", site)
	mux.Handle("/dashboard/", site)
	mux.Handle("/", obs.wrap(api))
	srv := &http.Server{Handler: withHSTS(cfg.BaseURL, mux), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	srv.RegisterOnShutdown(func() { close(streamsDone) })
	log.Info("picd listening", "url", "http://"+ln.Addr().String(), "store", cfg.Store, "base_url", cfg.BaseURL)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveMetrics serves Prometheus /metrics on its own address, apart from
// the public port: the metrics name every route, queue depth and chain
// height, which is for the operator only. A loopback default keeps them
// on the machine; set PIC_METRICS_LISTEN to a private interface for a
// scraper elsewhere. An address that cannot be bound is logged as an error
// and the gateway serves on without metrics: a busy monitoring port must
// not stop payments (Prometheus shows the target down). It returns the
// function that stops the metrics server.
func serveMetrics(addr string, obs *observability, log *slog.Logger) (stop func()) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("metrics: cannot listen; no metrics are served", "addr", addr, "err", err)
		return func() {}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", obs.metricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	log.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	return func() { _ = srv.Close() }
}

// hstsValue asks browsers to use HTTPS only, for a year, subdomains included.
const hstsValue = "max-age=31536000; includeSubDomains"

// withHSTS sends Strict-Transport-Security on every response when the
// public origin is https (TLS ends at a proxy in front, which passes the
// header on). With an http origin it sends nothing: browsers ignore it
// over plain HTTP, and a local quick start must not pin its host to HTTPS.
func withHSTS(baseURL string, next http.Handler) http.Handler {
	if !strings.HasPrefix(strings.ToLower(baseURL), "https://") {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", hstsValue)
		next.ServeHTTP(w, r)
	})
}

// yieldToProjections lets the appends that queued behind one of a
// rebuild's long statements through, and waits (bounded) until the
// projections have applied them: the creations waiting to read their
// invoice back get it before the rebuild takes the writer again.
func yieldToProjections(ctx context.Context, runner *projections.Runner, now func() time.Time) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(20 * time.Millisecond):
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = runner.WaitRecordedBefore(ctx, now())
}

// expireLoop closes invoices whose window has passed. The command id is
// derived from the invoice, so two processes expiring the same invoice
// append once.
func expireLoop(ctx context.Context, reader *readapi.SQL, expire commands.ExpireInvoiceHandler, now func() time.Time, log *slog.Logger) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ids, err := reader.DueInvoices(ctx, now(), 200)
		if err != nil {
			log.Error("expiry scan", "err", err)
			continue
		}
		for _, id := range ids {
			_, err := expire.Handle(ctx, commands.ExpireInvoice{CommandID: "expire-" + id, InvoiceID: id})
			if err != nil && !errors.Is(err, domain.ErrInvalidState) && ctx.Err() == nil {
				log.Error("expire invoice", "invoice_id", id, "err", err)
			}
		}
	}
}

// secretFile returns the configured hex secret, or the one saved at path,
// or a new random one saved there with 0600 permissions.
func secretFile(configured, path string, log *slog.Logger) ([]byte, error) {
	if configured != "" {
		b, err := hex.DecodeString(configured)
		if err != nil || len(b) < 32 {
			return nil, fmt.Errorf("secret for %s: want at least 64 hex characters", filepath.Base(path))
		}
		return b, nil
	}
	if data, err := os.ReadFile(path); err == nil {
		b, err := hex.DecodeString(string(data))
		if err != nil || len(b) < 32 {
			return nil, fmt.Errorf("%s is corrupt: want 64 hex characters", path)
		}
		// An older version, or an operator's copy, may have left it readable.
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() != 0o600 {
			if err := os.Chmod(path, 0o600); err != nil {
				return nil, fmt.Errorf("%s: make it 0600: %w", path, err)
			}
		}
		return b, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(b)), 0o600); err != nil {
		return nil, err
	}
	log.Info("generated a new secret", "path", path)
	return b, nil
}

// readiness answers 200 only when the event store and the read-model
// database answer, the projections are not far behind and every chain
// watcher's checkpoint has moved recently (see scanReadiness) with its
// node of the right chain (else the check is the mismatch: expected and
// found); a load balancer takes the process out of rotation otherwise.
func readiness(b *backend, runner *projections.Runner, scans []chainScan, leader *leadership, now func() time.Time) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		checks := map[string]string{}
		ready := true
		next, err := b.store.ReadAll(ctx, runner.Position(), 1)
		switch {
		case err != nil:
			checks["event_store"], ready = "unreachable", false
		case len(next) > 0 && time.Since(next[0].RecordedAt) > 30*time.Second:
			checks["event_store"] = "ok"
			checks["projections"], ready = fmt.Sprintf("behind by %s", time.Since(next[0].RecordedAt).Round(time.Second)), false
		default:
			checks["event_store"], checks["projections"] = "ok", "ok"
		}
		if err := b.db.Read.PingContext(ctx); err != nil {
			checks["read_models"], ready = "unreachable", false
		} else {
			checks["read_models"] = "ok"
		}
		lease, leaseReady := leader.readiness(ctx)
		ready = ready && leaseReady
		for _, c := range scans {
			cp, err := readScan(ctx, b.db, c)
			check, ok := scanReadiness(cp, err, now(), c.staleAfter)
			// A node of another chain stops scanning: the reason says
			// what was expected and what the node is.
			if reason, err := identityMismatch(ctx, b.db, c); err != nil || reason != "" {
				check, ok = reason, false
				if err != nil {
					check = "unknown: node identity unreadable"
				}
			}
			checks["chain_"+c.chain] = check
			ready = ready && ok
		}
		w.Header().Set("Content-Type", "application/json")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": ready, "checks": checks, "projected_position": runner.Position().String(), "leader": lease})
	}
}
