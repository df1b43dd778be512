package tron_test

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// sweeper is a sender that sweeps, on node (the fake through the client,
// or a wrapper of it), its hot wallet funded with hotSun TRX.
func (e *env) sweeper(node tron.SenderNode, hotSun int64) *tron.Sender {
	e.t.Helper()
	clock := func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
	s, err := tron.NewSender(tron.SenderConfig{Invoices: e.store, Now: clock, Logger: quiet, Costs: chain.RecordCostWith(e.h.RecordNetworkCost)},
		node, e.wallet, e.db, e.assets)
	if err != nil {
		e.t.Fatal(err)
	}
	if hotSun > 0 {
		e.node.fund(mustAddr(e.t, s.HotWalletAddress()), hotSun, 0)
	}
	return s
}

// paid creates an invoice, pays it in full and confirms it.
func (e *env) paid(asset, amount string) (id, addr string) {
	e.t.Helper()
	id, addr = e.invoice(asset, amount, 0)
	if asset == "TRX" {
		e.payTRX(addr, amount)
	} else {
		e.payUSDT(addr, amount)
	}
	e.node.mine(confirmations)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	return id, addr
}

func sweepOnce(t *testing.T, s *tron.Sender) []tron.SweepResult {
	t.Helper()
	res, err := s.SweepDeposits(context.Background())
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	return res
}

type sweepRecord struct {
	state                       string
	topupSun, burnedSun, energy int64
	topups, transfer, pending   string
}

func (e *env) sweepRecord(id string) sweepRecord {
	e.t.Helper()
	var r sweepRecord
	if err := e.db.Read.QueryRow(e.db.Q(`SELECT state, topup_sun, burned_sun, energy, topup_txids, transfer_txid, pending_txid FROM tron_sweeps WHERE sweep_id = ?`), id).
		Scan(&r.state, &r.topupSun, &r.burnedSun, &r.energy, &r.topups, &r.transfer, &r.pending); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// A TRC-20 sweep: the deposit address holds USDT and no TRX (not even an
// account); the hot wallet tops it up with the TRX its transfer burns
// (activating it), then the address sends its tokens to the hot wallet,
// signed with its own HD key and verified by the fake node byte for byte.
// The TRX burned is recorded from the receipts; a second pass does nothing.
func TestUSDTSweep(t *testing.T) { testUSDTSweep(t, setup(t, tron.Config{})) }

// The same with the sender's tables on Postgres.
func TestUSDTSweepPostgres(t *testing.T) { testUSDTSweep(t, setupWith(t, tron.Config{}, postgresDB)) }

func testUSDTSweep(t *testing.T, e *env) {
	s := e.sweeper(e.client, 50_000_000) // 50 TRX
	_, addr := e.paid("USDT.TRON", "80")
	if e.node.Activated(addr) {
		t.Fatal("a deposit address that received only tokens is an account")
	}
	hotBefore, _ := e.node.balances(s.HotWalletAddress())

	res := sweepOnce(t, s)
	if len(res) != 1 || res[0].State != tron.SweepTopUp || res[0].Address != addr || res[0].Amount.Int64() != 80_000_000 ||
		len(res[0].TxIDs) != 1 || res[0].TopUpSun <= 0 {
		t.Fatalf("first pass: %+v", res)
	}
	topup := res[0].TxIDs[0]
	if !e.node.verifiedTx(topup) {
		t.Fatal("the node did not verify the top-up")
	}
	// Energy of a transfer to an address without tokens, with the 20 %
	// margin, plus the bandwidth of a signed transfer at 1000 sun a byte.
	if lo := int64(tronfake.EnergyNewHolder * tronfake.EnergyFeeSun * 12 / 10); res[0].TopUpSun < lo || res[0].TopUpSun > lo+1_000_000 {
		t.Fatalf("top-up %d sun", res[0].TopUpSun)
	}
	if again := sweepOnce(t, s); len(again) != 1 || again[0].State != tron.SweepTopUp || len(again[0].TxIDs) != 1 {
		t.Fatalf("a pass before the top-up is mined: %+v", again) // waits, rebroadcasts, signs nothing new
	}

	e.node.mine(1)
	res = sweepOnce(t, s)
	if len(res) != 1 || res[0].State != tron.SweepTransfer || len(res[0].TxIDs) != 2 || res[0].Energy != tronfake.EnergyNewHolder {
		t.Fatalf("after the top-up: %+v", res)
	}
	transfer := res[0].TxIDs[1]
	if !e.node.verifiedTx(transfer) {
		t.Fatal("the node did not verify the sweep transfer")
	}
	if _, ok := e.node.SignedBytes(transfer); !ok {
		t.Fatal("the node does not hold the signed transfer")
	}

	e.node.mine(1)
	res = sweepOnce(t, s)
	if len(res) != 1 || res[0].State != tron.SweepDone {
		t.Fatalf("after the transfer: %+v", res)
	}
	if _, usdt := e.node.balances(addr); usdt.Sign() != 0 {
		t.Fatalf("the deposit address still holds %s", usdt)
	}
	if _, usdt := e.node.balances(s.HotWalletAddress()); usdt.Int64() != 80_000_000 {
		t.Fatalf("the hot wallet holds %s USDT units", usdt)
	}
	// The cost: the top-up's fee (it activated the address: 1.1 TRX) and
	// the transfer's energy and bandwidth, as the receipts say.
	up, _ := e.node.Receipt(topup)
	tr, _ := e.node.Receipt(transfer)
	rec := e.sweepRecord(res[0].SweepID)
	if up.Fee != 1_100_000 || tr.Fee < tronfake.EnergyNewHolder*tronfake.EnergyFeeSun || rec.burnedSun != up.Fee+tr.Fee ||
		res[0].BurnedSun != rec.burnedSun || rec.topupSun != res[0].TopUpSun || rec.pending != "" || rec.transfer != transfer {
		t.Fatalf("recorded %+v; receipts: top-up fee %d, transfer fee %d", rec, up.Fee, tr.Fee)
	}
	hotAfter, _ := e.node.balances(s.HotWalletAddress())
	if hotBefore-hotAfter != rec.topupSun+up.Fee {
		t.Fatalf("the hot wallet spent %d sun, want the top-up %d and its fee %d", hotBefore-hotAfter, rec.topupSun, up.Fee)
	}
	left, _ := e.node.balances(addr)
	if left != rec.topupSun-tr.Fee {
		t.Fatalf("%d sun left on the deposit address, want %d", left, rec.topupSun-tr.Fee)
	}
	// Money rule 7: each transaction's burn is in the ledger once, as the
	// gateway's cost, paid by the address that sent it.
	costs := e.costs()
	if len(costs) != 2 || costs[topup].Kind != domain.CostTopUpBurn || costs[topup].From != s.HotWalletAddress() ||
		costs[topup].Amount.String() != "1.1" || costs[transfer].Kind != domain.CostSweepBurn || costs[transfer].From != addr ||
		costs[transfer].Amount.String() != domain.FromBaseUnits(big.NewInt(tr.Fee), 6).String() {
		t.Fatalf("cost events %+v; receipts: top-up fee %d, transfer fee %d", costs, up.Fee, tr.Fee)
	}

	verified := len(e.node.Verified())
	e.node.mine(1)
	if res := sweepOnce(t, s); len(res) != 0 || len(e.node.Verified()) != verified {
		t.Fatalf("a swept address swept again: %+v", res)
	}
	// A new payment to the same address is swept in a new round; the
	// TRX left from the first top-up pays part of it.
	e.advance(time.Second)
	e.payUSDT(addr, "5")
	e.node.mine(confirmations)
	e.advance(time.Second)
	e.scan()
	res = sweepOnce(t, s)
	if len(res) != 1 || !strings.HasSuffix(res[0].SweepID, ":2") || res[0].Amount.Int64() != 5_000_000 {
		t.Fatalf("second round: %+v", res)
	}
	for i := 0; i < 3 && res[0].State != tron.SweepDone; i++ {
		e.node.mine(1)
		res = sweepOnce(t, s)
	}
	if res[0].State != tron.SweepDone {
		t.Fatalf("second round: %+v", res)
	}
	if _, usdt := e.node.balances(s.HotWalletAddress()); usdt.Int64() != 85_000_000 {
		t.Fatalf("the hot wallet holds %s USDT units", usdt)
	}
}

// flakyBroadcast loses the first n broadcasts (the node never sees them),
// as a connection that drops.
type flakyBroadcast struct {
	tron.SenderNode
	mu   sync.Mutex
	lose int
}

func (f *flakyBroadcast) BroadcastHex(ctx context.Context, signed []byte) (tron.BroadcastResult, error) {
	f.mu.Lock()
	if f.lose > 0 {
		f.lose--
		f.mu.Unlock()
		return tron.BroadcastResult{}, errors.New("connection reset")
	}
	f.mu.Unlock()
	return f.SenderNode.BroadcastHex(ctx, signed)
}

// A sweep resumes across a restart: a sender that stops after the top-up
// is replaced by a new one, which finishes. A transfer whose broadcast was
// lost is rebroadcast, the same bytes (same txid), never signed twice.
func TestSweepResumesAndRebroadcasts(t *testing.T) {
	e := setup(t, tron.Config{})
	first := e.sweeper(e.client, 50_000_000)
	_, addr := e.paid("USDT.TRON", "12")
	res := sweepOnce(t, first)
	if len(res) != 1 || res[0].State != tron.SweepTopUp {
		t.Fatalf("first pass: %+v", res)
	}
	e.node.mine(1)

	flaky := &flakyBroadcast{SenderNode: e.client, lose: 2}
	second := e.sweeper(flaky, 0) // a restart
	res = sweepOnce(t, second)
	if len(res) != 1 || res[0].State != tron.SweepTransfer {
		t.Fatalf("after the restart: %+v", res)
	}
	transfer := res[0].TxIDs[len(res[0].TxIDs)-1]
	if e.node.verifiedTx(transfer) {
		t.Fatal("the lost broadcast reached the node")
	}
	e.node.mine(1)
	// The rebroadcast is lost too: a temporary error, the sweep waits.
	if _, err := second.SweepDeposits(e.ctx); err == nil || !strings.Contains(err.Error(), "connection reset") || e.node.verifiedTx(transfer) {
		t.Fatalf("a lost rebroadcast: %v", err)
	}
	res = sweepOnce(t, second)
	if res[0].State != tron.SweepTransfer || !e.node.verifiedTx(transfer) || res[0].TxIDs[len(res[0].TxIDs)-1] != transfer {
		t.Fatalf("rebroadcast: %+v", res)
	}
	e.node.mine(1)
	if res = sweepOnce(t, second); res[0].State != tron.SweepDone {
		t.Fatalf("%+v", res)
	}
	if _, usdt := e.node.balances(addr); usdt.Sign() != 0 {
		t.Fatalf("left %s on the deposit address", usdt)
	}
}

// A hot wallet without the TRX of a top-up: a clear error, nothing
// broadcast; funded, the sweep goes on.
func TestSweepWithoutHotWalletTRX(t *testing.T) {
	e := setup(t, tron.Config{})
	s := e.sweeper(e.client, 1_000_000) // 1 TRX
	e.paid("USDT.TRON", "7")
	before := len(e.node.Verified())
	_, err := s.SweepDeposits(e.ctx)
	if !errors.Is(err, tron.ErrSweepTopUpFunds) || !strings.Contains(err.Error(), s.HotWalletAddress()) {
		t.Fatalf("sweep: %v", err)
	}
	if len(e.node.Verified()) != before {
		t.Fatal("something was broadcast")
	}
	e.node.fund(mustAddr(t, s.HotWalletAddress()), 20_000_000, 0)
	var res []tron.SweepResult
	for i := 0; i < 3; i++ {
		res = sweepOnce(t, s)
		e.node.mine(1)
	}
	if len(res) != 1 || res[0].State != tron.SweepDone {
		t.Fatalf("after funding: %+v", res)
	}
}

// A TRX sweep sends the balance less its bandwidth, no top-up.
func TestTRXSweep(t *testing.T) {
	e := setup(t, tron.Config{})
	s := e.sweeper(e.client, 0)
	_, addr := e.paid("TRX", "40")
	res := sweepOnce(t, s)
	if len(res) != 1 || res[0].State != tron.SweepTransfer || res[0].TopUpSun != 0 || len(res[0].TxIDs) != 1 {
		t.Fatalf("first pass: %+v", res)
	}
	e.node.mine(1)
	res = sweepOnce(t, s)
	if len(res) != 1 || res[0].State != tron.SweepDone {
		t.Fatalf("%+v", res)
	}
	info, _ := e.node.Receipt(res[0].TxIDs[0])
	hot, _ := e.node.balances(s.HotWalletAddress())
	left, _ := e.node.balances(addr)
	if hot != res[0].Amount.Int64() || hot+info.Fee != 40_000_000 || left != 0 || res[0].BurnedSun != info.Fee {
		t.Fatalf("hot wallet %d sun, left %d, fee %d, result %+v", hot, left, info.Fee, res[0])
	}
	if big.NewInt(hot).Cmp(res[0].Amount) != 0 {
		t.Fatal("amount")
	}
}

// A top-up that never reached the node and whose reference block left the
// chain can never confirm: it is dropped and built again, and only the
// TRX that really left the hot wallet counts as topped up.
func TestSweepRebuildsADeadTopUp(t *testing.T) {
	e := setup(t, tron.Config{})
	flaky := &flakyBroadcast{SenderNode: e.client, lose: 1}
	s := e.sweeper(flaky, 50_000_000)
	e.paid("USDT.TRON", "9")
	e.node.mine(2)
	res := sweepOnce(t, s)
	if len(res) != 1 || res[0].State != tron.SweepTopUp || e.node.verifiedTx(res[0].TxIDs[0]) {
		t.Fatalf("first pass: %+v", res)
	}
	lost, topped := res[0].TxIDs[0], res[0].TopUpSun
	e.node.reorg(1, nil) // the top-up's reference block is gone
	res = sweepOnce(t, s)
	if len(res[0].TxIDs) != 2 || res[0].TxIDs[0] != lost || res[0].TopUpSun != topped || !e.node.verifiedTx(res[0].TxIDs[1]) {
		t.Fatalf("after the reorg: %+v", res)
	}
	for i := 0; i < 3 && res[0].State != tron.SweepDone; i++ {
		e.node.mine(1)
		res = sweepOnce(t, s)
	}
	if res[0].State != tron.SweepDone || e.sweepRecord(res[0].SweepID).topupSun != topped {
		t.Fatalf("%+v", res)
	}
}

// A sweep whose dry run reverts (the deposit address is blacklisted by the
// token) fails that round before anything is sent: no top-up, no
// transfer, the round recorded as failed; the next pass starts a new round
// (bounded by maxFailedSweeps), it does not loop on the same one.
func TestUSDTSweepRevertedDryRun(t *testing.T) {
	e := setup(t, tron.Config{})
	s := e.sweeper(e.client, 50_000_000)
	_, addr := e.paid("USDT.TRON", "80")
	if err := e.node.Blacklist(addr); err != nil {
		t.Fatal(err)
	}
	broadcasts := len(e.node.Verified())
	res := sweepOnce(t, s)
	if len(res) != 1 || res[0].State != tron.SweepFailed || len(res[0].TxIDs) != 0 || res[0].TopUpSun != 0 {
		t.Fatalf("sweep: %+v", res)
	}
	if r := e.sweepRecord(res[0].SweepID); r.state != tron.SweepFailed || r.topups != "" || r.pending != "" {
		t.Fatalf("record: %+v", r)
	}
	if len(e.node.Verified()) != broadcasts {
		t.Fatalf("broadcasts: %v", e.node.Verified())
	}
}

// costs reads the NetworkCostPaid events of the log by txid.
func (e *env) costs() map[string]domain.NetworkCostPaid {
	e.t.Helper()
	recs, err := e.store.ReadAll(context.Background(), eventstore.Start, 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]domain.NetworkCostPaid{}
	for _, r := range recs {
		if r.Type != domain.TypeNetworkCostPaid {
			continue
		}
		ev, err := domain.DecodeStored(r.Type, r.Data, r.Metadata)
		if err != nil {
			e.t.Fatal(err)
		}
		c := ev.(domain.NetworkCostPaid)
		if err := domain.CheckBalanced(c.Postings); err != nil || c.Asset != "TRX" {
			e.t.Fatalf("cost %+v: %v", c, err)
		}
		if _, dup := out[c.TxID]; dup {
			e.t.Fatalf("two cost events for %s", c.TxID)
		}
		out[c.TxID] = c
	}
	return out
}
