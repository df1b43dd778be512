package tron_test

import (
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/domain"
)

// watchOnlySweeper is a sender that holds only the public keys of keys'
// generations (picd serve with PIC_SIGNER) and has keys sign.
func (e *env) watchOnlySweeper(keys *hd.Wallet) *tron.Sender {
	e.t.Helper()
	watch, err := hd.NewWatchOnlyGenerations(keys.GenerationKeys(), &chaincfg.RegressionNetParams)
	if err != nil {
		e.t.Fatal(err)
	}
	clock := func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
	s, err := tron.NewSender(tron.SenderConfig{Invoices: e.store, Now: clock, Logger: quiet, Costs: chain.RecordCostWith(e.h.RecordNetworkCost),
		Signer: custody.Local{Keys: keys}, HotWalletIndex: keys.Current(tron.DefaultHotWalletIndex),
		RetiredHotWallets: keys.Retired(tron.DefaultHotWalletIndex)}, e.client, watch, e.db, e.assets)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// A sender that holds only public keys (picd serve with PIC_SIGNER) sweeps
// a deposit: it finds the deposit address from its public key and has the
// signer sign. Before, it derived the address from the private key, which
// a watch-only wallet does not have ("not our address at index 0").
func TestSweepWithWatchOnlyKeys(t *testing.T) {
	e := setup(t, tron.Config{})
	s := e.watchOnlySweeper(e.wallet)
	_, addr := e.paid("TRX", "40")
	sweepOnce(t, s)
	e.node.mine(1)
	if res := sweepOnce(t, s); len(res) != 1 || res[0].State != tron.SweepDone || res[0].Address != addr {
		t.Fatalf("%+v", res)
	}
}

// After a seed rotation (#18): the invoice paid to generation 0's address
// is swept into generation 1's hot wallet with generation 0's key, and so
// is everything generation 0's hot wallet held: its USDT first (topped up
// with TRX for the energy it lacks), then its TRX. Once empty, the retired
// wallet is left alone.
func TestSweepAfterSeedRotation(t *testing.T) {
	e := setup(t, tron.Config{})
	_, deposit := e.paid("USDT.TRON", "80")
	both, err := hd.NewWallets([]string{testMnemonic, "legal winner thank year wave sausage worth useful legal winner thank yellow"}, "",
		&chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	s := e.watchOnlySweeper(both)
	oldHot, _ := e.wallet.Address(domain.ChainTron, tron.DefaultHotWalletIndex)
	newHot, _ := both.Address(domain.ChainTron, hd.KeyNumber(1, tron.DefaultHotWalletIndex))
	if s.HotWalletAddress() != newHot || newHot == oldHot {
		t.Fatalf("hot wallet %s, want generation 1's %s", s.HotWalletAddress(), newHot)
	}
	e.node.fund(mustAddr(t, oldHot), 3_000_000, 30_000_000) // 3 TRX, 30 USDT
	e.node.fund(mustAddr(t, newHot), 50_000_000, 0)
	moved := func() bool {
		_, dep := e.node.balances(deposit)
		oldSun, oldUSDT := e.node.balances(oldHot)
		return dep.Sign() == 0 && oldUSDT.Sign() == 0 && oldSun < 10_000
	}
	for i := 0; i < 10 && !moved(); i++ {
		sweepOnce(t, s)
		e.node.mine(1)
	}
	oldSun, oldUSDT := e.node.balances(oldHot)
	if !moved() {
		t.Fatalf("the retired hot wallet holds %d sun and %s USDT units", oldSun, oldUSDT)
	}
	if _, usdt := e.node.balances(newHot); usdt.Int64() != 110_000_000 {
		t.Fatalf("the new hot wallet holds %s USDT units, want the deposit's 80 and the retired wallet's 30", usdt)
	}
	var rounds int
	count := func() int {
		if err := e.db.Read.QueryRow(`SELECT COUNT(*) FROM tron_sweeps WHERE address = ?`, oldHot).Scan(&rounds); err != nil {
			t.Fatal(err)
		}
		return rounds
	}
	// The pass that finds the TRX transfer mined, then one that finds the
	// wallet empty (an empty round per asset), then none.
	for i := 0; i < 3; i++ {
		if len(sweepOnce(t, s)) == 0 {
			break
		}
	}
	before := count()
	sweepOnce(t, s)
	if after := count(); after != before {
		t.Fatalf("an empty retired hot wallet got %d more sweep rounds", after-before)
	}
}
