package main

import (
	"database/sql"
	"math/big"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
)

// refuseCosts makes the event store of dataDir refuse every NetworkCostPaid
// (a trigger aborts its insert, as a storage error would): the gateway's
// appends of network costs fail and everything else goes on.
func refuseCosts(t *testing.T, dataDir string, refuse bool) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "picd.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := `DROP TRIGGER IF EXISTS refuse_network_costs`
	if refuse {
		q = `CREATE TRIGGER refuse_network_costs BEFORE INSERT ON events WHEN NEW.type = 'NetworkCostPaid'
			BEGIN SELECT RAISE(ABORT, 'network costs refused by the test'); END`
	}
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

// TestChainAuditFailsOnAMissingCost: on a real geth, an ETH and a USDT.ETH
// deposit are swept by the sweeper's loop while the event store refuses
// every network cost. The coins move; the gas the sweeps paid is not in
// the log. picd audit --chain exits 1 naming each sweep and its address,
// and the token's gas top-up (which the hot wallet paid). Once the log
// takes costs again, the sweeper books each of the three costs it kept
// due, once, and the audit reconciles to the wei.
func TestChainAuditFailsOnAMissingCost(t *testing.T) {
	node := gethtest.Start(t)
	token := node.DeployToken("USDT", 6)
	dir := t.TempDir()
	env := append(ethEnv(t, node, token, dir), sweepEvery)
	g := startEthGateway(t, env)
	key := tronSignUp(t, g)
	ethID, ethAddr := ethInvoice(t, g, key, "ETH", "0.5")
	usdtID, usdtAddr := ethInvoice(t, g, key, "USDT.ETH", "25")
	node.Fund(ethAddr, ether("0.5"))
	node.TransferToken(token, usdtAddr, big.NewInt(25_000_000))
	node.Mine(11)
	waitFor(t, g, "ETH paid", g.invoiceStatus(key, ethID), hasStatus("paid"))
	waitFor(t, g, "USDT.ETH paid", g.invoiceStatus(key, usdtID), hasStatus("paid"))
	node.Fund(ethHotWallet(t), ether("1"))
	mineToFinal(node)
	wantBalance(t, g, key, "ETH", "0.49875", "0")
	wantBalance(t, g, key, "USDT.ETH", "24.9375", "0")
	g.stop()

	refuseCosts(t, dir, true)
	p := startProc(t, env)
	sweepsDone(t, p, "eth", 2, func() {})
	waitScanned(t, p.gateway, env, node.Head())
	p.stop()
	if !strings.Contains(p.out.String(), "network costs refused by the test") {
		t.Fatalf("no cost append failed:\n%s", tail(p.out.String(), 6000))
	}

	code, rep, raw := runChainAudit(t, env)
	if code != exitProblems || rep.OK {
		t.Fatalf("audit --chain with the sweeps' costs missing: exit %d\n%s", code, raw)
	}
	for _, addr := range []string{ethAddr.Hex(), usdtAddr.Hex()} {
		named := false
		for _, pr := range rep.Problems {
			named = named || (strings.Contains(pr, strings.ToLower(addr)) && strings.Contains(pr, "sweep "))
		}
		if !named {
			t.Fatalf("no problem names the sweep of %s\n%s", addr, raw)
		}
	}
	if !strings.Contains(strings.Join(rep.Problems, "\n"), "topup 0x") {
		t.Fatalf("no problem names the gas top-up\n%s", raw)
	}

	refuseCosts(t, dir, false)
	p = startProc(t, env)
	waitFor(t, p.gateway, "the costs booked again", func() map[string]any {
		code, _, _ := runChainAudit(t, env)
		return map[string]any{"code": code}
	}, func(m map[string]any) bool { return m["code"] == 0 })
	p.stop()
	code, rep, raw = runChainAudit(t, env)
	wantReconciled(t, code, rep, raw, map[string]string{"ETH": "1", "USDT.ETH": "0"})
	if n, streams := costEvents(t, dir); n != 3 || streams != 3 {
		t.Fatalf("%d NetworkCostPaid in %d streams, want the 3 costs once each", n, streams)
	}
}

// costEvents counts the log's NetworkCostPaid events and their streams.
func costEvents(t *testing.T, dataDir string) (events, streams int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "picd.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT stream) FROM events WHERE type = 'NetworkCostPaid'`).Scan(&events, &streams); err != nil {
		t.Fatal(err)
	}
	return events, streams
}
