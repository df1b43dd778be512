package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain/btc"
	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
)

func TestReadyScanDecision(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		updated   time.Time
		err       error
		wantCheck string
		wantOK    bool
	}{
		{"just scanned", now.Add(-2 * time.Second), nil, "ok", true},
		{"at the threshold", now.Add(-scanStaleAfter), nil, "ok", true},
		{"past the threshold", now.Add(-scanStaleAfter - time.Second), nil, "stale: last scan 46s ago", false},
		{"long stale", now.Add(-90 * time.Minute), nil, "stale: last scan 1h30m0s ago", false},
		{"clock skew ahead", now.Add(3 * time.Second), nil, "ok", true},
		{"no scan yet", time.Time{}, fmt.Errorf("eth scan checkpoint: %w", sql.ErrNoRows), "stale: no scan yet", false},
		{"unreadable", time.Time{}, errors.New("connection refused"), "unknown: checkpoint unreadable", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check, ok := scanReadiness(scanCheckpoint{height: 100, updatedAt: tt.updated}, tt.err, now, scanStaleAfter)
			if check != tt.wantCheck || ok != tt.wantOK {
				t.Fatalf("got %q %v, want %q %v", check, ok, tt.wantCheck, tt.wantOK)
			}
		})
	}
}

func TestObserveChainScans(t *testing.T) {
	if got := chainScans(Config{}); len(got) != 0 {
		t.Fatalf("simulated chains have checkpoints: %v", got)
	}
	got := chainScans(Config{BTCRPCHost: "node:8332", TronAPIURL: "https://api.trongrid.io"})
	if len(got) != 2 || got[0].chain != "btc" || got[0].staleAfter != btcScanStaleAfter || got[1].chain != "tron" {
		t.Fatalf("chainScans = %v", got)
	}
}

// TestReadyChains reads real checkpoint tables (embedded store): a
// fresh ETH checkpoint is ok, a stale TRON one and a missing BTC one make
// /readyz 503, and the gauges show the heights and ages.
func TestReadyChains(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	db := sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	for _, migrate := range []func(context.Context, sqldb.DB) error{projections.Migrate, btc.Migrate, eth.Migrate, tron.Migrate} {
		if err := migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	for _, q := range []struct {
		sql string
		at  time.Time
	}{
		{`INSERT INTO eth_scan_checkpoint (id, height, hash, updated_at) VALUES (1, 21000000, '0xabc', ?)`, now.Add(-3 * time.Second)},
		{`INSERT INTO tron_scan_checkpoint (id, height, block_id, updated_at) VALUES (1, 70000000, 'blk', ?)`, now.Add(-10 * time.Minute)},
	} {
		if _, err := db.Write.ExecContext(ctx, q.sql, q.at.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := &backend{store: store, db: db}
	runner := projections.NewRunner(store, db, quiet)
	scans := chainScans(Config{BTCRPCHost: "node:8332", ETHRPCURL: "http://node:8545", TronAPIURL: "https://api.trongrid.io"})

	rec := httptest.NewRecorder()
	readiness(b, runner, scans, nil, func() time.Time { return now })(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var body struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: %v", rec.Body, err)
	}
	want := map[string]string{"chain_btc": "stale: no scan yet", "chain_eth": "ok", "chain_tron": "stale: last scan 10m0s ago",
		"read_models": "ok", "event_store": "ok", "projections": "ok"}
	if rec.Code != http.StatusServiceUnavailable || body.Ready {
		t.Errorf("readyz: %d %s, want 503", rec.Code, rec.Body)
	}
	for k, v := range want {
		if body.Checks[k] != v {
			t.Errorf("check %s = %q, want %q", k, body.Checks[k], v)
		}
	}

	// Only fresh checkpoints: ready.
	rec = httptest.NewRecorder()
	readiness(b, runner, scans[1:2], nil, func() time.Time { return now })(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("readyz with a fresh ETH checkpoint only: %d %s", rec.Code, rec.Body)
	}

	obs := newObservability(quiet)
	obs.registerStateGauges(store, runner, db, scans)
	rec = httptest.NewRecorder()
	obs.metricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	metrics := rec.Body.String()
	for _, line := range []string{
		`picd_chain_scan_height{chain="btc"} -1`,
		`picd_chain_scan_height{chain="eth"} 2.1e+07`,
		`picd_chain_scan_height{chain="tron"} 7e+07`,
		`picd_chain_scan_age_seconds{chain="btc"} -1`,
		`picd_chain_scan_age_seconds{chain="eth"} `,
		`picd_chain_scan_age_seconds{chain="tron"} 6`, // 600.x seconds
	} {
		if !strings.Contains(metrics, line) {
			t.Errorf("metrics lack %s\n%s", line, metrics)
		}
	}

	// The Ethereum node turns out to be of another chain (#16 item 1): its
	// fresh checkpoint no longer makes it ready; the check says why.
	const reason = "eth node identity mismatch: expected chain id 1337, genesis 0xaa (recorded first), found chain id 1337, genesis 0xbb"
	if err := scan.NewIdentityTable(db, "eth_node_identity").SetIdentityMismatch(ctx, reason, now); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	readiness(b, runner, scans[1:2], nil, func() time.Time { return now })(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	body.Checks = nil
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusServiceUnavailable || body.Checks["chain_eth"] != reason {
		t.Errorf("readyz with the ETH node of another chain: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	obs.metricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range []string{`picd_chain_identity_mismatch{chain="eth"} 1`, `picd_chain_identity_mismatch{chain="btc"} 0`} {
		if !strings.Contains(rec.Body.String(), line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}
