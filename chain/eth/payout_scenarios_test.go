package eth_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient/simulated"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// The money-out scenarios of issue 7 on the simulated EVM: the real
// commands and projections, the settlement process manager, and the
// payout processor driving the real Sender. Each ends with the audit.

// moneyOut is a walletEnv wired as picd wires money out: commands whose
// credits wait for the projections (the settlement asks for them at the
// DepositConfirmed's position), the settlement, and processors.
type moneyOut struct {
	*walletEnv
	settle *chain.Settlement
}

func newMoneyOut(t *testing.T) *moneyOut {
	t.Helper()
	e := setupWallet(t)
	if err := chain.Migrate(e.ctx, e.db); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
	d := commands.Deps{Store: e.store, Assets: e.assets, Now: clock, NewID: commands.NewIDGenerator(clock),
		Credits: readapi.Credits{SQL: e.read, Wait: e.runner, MaxWait: 5 * time.Second}}
	e.h = commands.New(d, commands.NewIndexAllocator(d, e.wallet.Deriver()), hd.AddressCheck(&chaincfg.RegressionNetParams))
	return &moneyOut{walletEnv: e, settle: chain.NewSettlement(e.store, e.db, e.h, quiet)}
}

func (m *moneyOut) processor(s chain.Sender) *chain.Processor {
	return chain.NewProcessor(m.store, m.db, m.h, m.assets, []chain.Sender{s},
		chain.ProcessorConfig{Now: time.Now, PollInterval: time.Millisecond, RetryBase: time.Millisecond, RetryMax: 20 * time.Millisecond, Logger: quiet})
}

func (m *moneyOut) setPayout(ps domain.PayoutSettings) {
	m.t.Helper()
	if _, err := m.h.SetPayoutSettings.Handle(m.ctx, commands.SetPayoutSettings{MerchantID: m.merchant, Settings: ps}); err != nil {
		m.t.Fatal(err)
	}
}

// paid creates an invoice, pays it in full on chain and mines it until
// final: its money is available.
func (m *moneyOut) paid(asset, amount string) string {
	m.t.Helper()
	id := m.confirmed(asset, amount)
	m.mine(finality - confirmations)
	m.scan()
	return id
}

// confirmed creates an invoice, pays it in full on chain and mines it to
// confirmation: paid, its money pending until final.
func (m *moneyOut) confirmed(asset, amount string) string {
	m.t.Helper()
	id, addr := m.invoice(asset, amount, 0)
	if asset == "ETH" {
		m.payETH(addr, amount)
	} else {
		m.payUSDT(addr, amount)
	}
	m.mine(confirmations)
	m.scan()
	m.wantStatus(id, domain.StatusPaid)
	return id
}

// settleAndPass runs what follows the log once, as the service does:
// projections, settlement, projections, the processor's intake and one
// pass over the due payouts, projections.
func (m *moneyOut) settleAndPass(p *chain.Processor) {
	m.t.Helper()
	m.settleOnly()
	if err := p.CatchUp(m.ctx); err != nil {
		m.t.Fatal(err)
	}
	time.Sleep(3 * time.Millisecond) // the poll interval and backoff of these processors
	if _, err := p.Pass(m.ctx); err != nil {
		m.t.Fatal(err)
	}
	m.catchUp()
}

func (m *moneyOut) settleOnly() {
	m.t.Helper()
	m.catchUp()
	if err := m.settle.CatchUp(m.ctx); err != nil {
		m.t.Fatal(err)
	}
	m.catchUp()
}

// confirmPayout mines the sent payout and the blocks of its 3
// confirmations, and lets p see them.
func (m *moneyOut) confirmPayout(p *chain.Processor, id string) readapi.Payout {
	m.t.Helper()
	po := m.payout(id)
	m.commitTxs(po.TxID)
	m.settleAndPass(p)
	if po = m.payout(id); po.Status != domain.PayoutSentStatus {
		m.t.Fatalf("1 of %d confirmations: %+v", confirmations, po)
	}
	m.mine(confirmations - 1)
	m.settleAndPass(p)
	if po = m.payout(id); po.Status != domain.PayoutConfirmedStatus {
		m.t.Fatalf("after %d confirmations: %+v", confirmations, po)
	}
	return po
}

func (m *moneyOut) payouts() []readapi.Payout {
	m.t.Helper()
	page, _, err := m.read.ListPayouts(m.ctx, m.merchant, readapi.PayoutFilter{Limit: 100})
	if err != nil {
		m.t.Fatal(err)
	}
	return page
}

func (m *moneyOut) payout(id string) readapi.Payout {
	m.t.Helper()
	po, err := m.read.PayoutByID(m.ctx, m.merchant, id)
	if err != nil {
		m.t.Fatal(err)
	}
	return po
}

func (m *moneyOut) wantFunds(asset, available, reserved string) {
	m.t.Helper()
	bals, err := m.read.Balances(m.ctx, m.merchant)
	if err != nil {
		m.t.Fatal(err)
	}
	b := readapi.Balance{Asset: asset}
	for _, x := range bals {
		if x.Asset == asset {
			b = x
		}
	}
	if b.Available.String() != available || b.Reserved.String() != reserved || !b.Pending.IsZero() {
		m.t.Fatalf("%s available %s reserved %s pending %s, want %s and %s", asset, b.Available, b.Reserved, b.Pending, available, reserved)
	}
}

// payoutTxs counts the payout transactions the senders stored.
func (m *moneyOut) payoutTxs() int {
	m.t.Helper()
	var n int
	if err := m.db.Read.QueryRow(`SELECT count(*) FROM eth_txs WHERE purpose = 'payout'`).Scan(&n); err != nil {
		m.t.Fatal(err)
	}
	return n
}

// hotNonce is how many transactions of the hot wallet are mined.
func (m *moneyOut) hotNonce(s *eth.Sender) uint64 {
	m.t.Helper()
	n, err := m.client.NonceAt(m.ctx, s.HotWallet(), nil)
	if err != nil {
		m.t.Fatal(err)
	}
	return n
}

// wantETHPaid checks that the recipient (a fresh address) holds exactly
// what the payout says it sent, that its mined transaction is the
// recorded one, and that its network fee is what the receipt says was
// paid (issue 16 item 8; it was the fee cap, and the recipient got the
// amount − that cap). It returns the fee in wei.
func (m *moneyOut) wantETHPaid(po readapi.Payout) *big.Int {
	m.t.Helper()
	fee := units(m.t, po.NetworkFee.String(), 18)
	got := m.balance(common.HexToAddress(po.ToAddress))
	if sent := units(m.t, po.Sent.String(), 18); got.Cmp(sent) != 0 || new(big.Int).Add(sent, fee).Cmp(units(m.t, po.Amount.String(), 18)) > 0 {
		m.t.Fatalf("recipient holds %s wei, payout sent %s + fee %s of %s", got, po.Sent, po.NetworkFee, po.Amount)
	}
	r, err := m.client.TransactionReceipt(m.ctx, common.HexToHash(po.TxID))
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		m.t.Fatalf("receipt of %s: %+v %v", po.TxID, r, err)
	}
	if paid := new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), r.EffectiveGasPrice); paid.Cmp(fee) != 0 {
		m.t.Fatalf("network fee %s wei, the receipt says %s wei", fee, paid)
	}
	return fee
}

// feeReturned is what a confirmed ETH payout's fee cap left unspent: it
// went back to the available balance.
func feeReturned(po readapi.Payout) domain.Amount {
	return po.Amount.Sub(*po.Sent).Sub(*po.NetworkFee)
}

// countingSender counts what the processor asks of a real Sender.
type countingSender struct {
	*eth.Sender
	builds, broadcasts atomic.Int32
}

func (c *countingSender) Build(ctx context.Context, p chain.PayoutToSend) (chain.Signed, error) {
	c.builds.Add(1)
	return c.Sender.Build(ctx, p)
}

func (c *countingSender) Broadcast(ctx context.Context, tx chain.Signed) error {
	c.broadcasts.Add(1)
	return c.Sender.Broadcast(ctx, tx)
}

// 1. Instant mode, USDT: a final invoice payment becomes a payout by
// itself (a confirmed one only once final); the deposit is swept to the
// hot wallet, and the processor builds, broadcasts and, after 3 blocks,
// confirms the token transfer. The recipient gets the whole net (a token
// payout's network fee is 0 USDT; the hot wallet pays the gas in ETH,
// booked in eth_txs).
func TestScenarioInstantPayoutAfterConfirmedInvoice(t *testing.T) {
	m := newMoneyOut(t)
	s := &countingSender{Sender: m.sender()}
	m.fundHot(s.Sender, "1", "")
	to := stranger(t)
	m.setPayout(domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: to.Hex(), Mode: domain.PayoutInstant, InstantMinAmount: domain.MustAmount("10")})
	inv := m.confirmed("USDT.ETH", "20")
	m.settleOnly()
	if ps := m.payouts(); len(ps) != 0 {
		t.Fatalf("payouts %+v of a payment not final yet", ps)
	}
	m.wantBalance("USDT.ETH", "0", "19.95")
	m.mine(finality - confirmations)
	m.scan()
	small := m.paid("USDT.ETH", "5") // below instant_min_amount: accrues
	m.settleOnly()
	ps := m.payouts()
	if len(ps) != 1 {
		t.Fatalf("payouts %+v: want the one instant payout", ps)
	}
	po := ps[0]
	if po.Kind != domain.PayoutKindInstant || po.SourceInvoiceID != inv || po.ToAddress != to.Hex() || po.Status != domain.PayoutRequestedStatus ||
		po.Amount.String() != "19.95" {
		t.Fatalf("instant payout %+v", po)
	}
	m.wantFunds("USDT.ETH", "4.9875", "19.95")

	// Before the sweep the hot wallet holds no USDT: the payout waits for
	// the deposits to come home instead of failing.
	m.settleAndPass(m.processor(m.sender()))
	if po = m.payout(po.ID); po.Status != domain.PayoutRequestedStatus {
		t.Fatalf("before the sweep: %+v; want it still requested", po)
	}
	m.wantFunds("USDT.ETH", "4.9875", "19.95")

	// The deposits come home (gas topped up from the hot wallet).
	for i := 0; ; i++ {
		res, err := s.SweepDeposits(m.ctx)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		var txs []string
		for _, r := range res {
			if r.State == eth.SweepDone {
				done++
			}
			if r.State != eth.SweepDone && len(r.TxIDs) > 0 {
				txs = append(txs, r.TxIDs[len(r.TxIDs)-1])
			}
		}
		if done == 2 {
			break
		}
		if i == 5 {
			t.Fatalf("sweeps %+v", res)
		}
		m.commitTxs(txs...)
	}
	if got := m.tokenBalance(s.HotWallet()); got.Cmp(units(t, "25", 6)) != 0 {
		t.Fatalf("hot wallet holds %s USDT units after the sweeps", got)
	}
	hotETH := m.balance(s.HotWallet())

	proc := m.processor(s)
	m.settleAndPass(proc)
	if po = m.payout(po.ID); po.Status != domain.PayoutSentStatus || po.TxID == "" || !po.NetworkFee.IsZero() {
		t.Fatalf("after a pass %+v", po)
	}
	po = m.confirmPayout(proc, po.ID)
	if got := m.tokenBalance(to); got.Cmp(units(t, "19.95", 6)) != 0 || po.Sent.String() != "19.95" {
		t.Fatalf("recipient holds %s USDT units, payout sent %s; want 19.95 − 0", got, po.Sent)
	}
	if got := m.tokenBalance(s.HotWallet()); got.Cmp(units(t, "5.05", 6)) != 0 {
		t.Fatalf("hot wallet holds %s USDT units, want 25 − 19.95", got)
	}
	var gas string
	if err := m.db.Read.QueryRow(m.db.Q(`SELECT fee_paid_wei FROM eth_txs WHERE txid = ?`), po.TxID).Scan(&gas); err != nil {
		t.Fatal(err)
	}
	if spent := new(big.Int).Sub(hotETH, m.balance(s.HotWallet())); spent.String() != gas {
		t.Fatalf("the hot wallet spent %s wei of ETH on the payout, booked %s", spent, gas)
	}
	// Money rule 7: the gateway paid that gas; the ledger says so.
	if costs, _ := m.costs(); costs[domain.CostTokenPayoutGas] == nil || costs[domain.CostTokenPayoutGas].String() != gas {
		t.Fatalf("token payout gas in the ledger %v, paid %s", costs, gas)
	}
	m.wantFunds("USDT.ETH", "4.9875", "0")
	if s.builds.Load() != 1 || s.broadcasts.Load() != 1 || m.payoutTxs() != 1 {
		t.Fatalf("builds %d broadcasts %d stored %d", s.builds.Load(), s.broadcasts.Load(), m.payoutTxs())
	}

	// The settlement handles the whole log again: still one payout.
	if _, err := m.db.Write.Exec(`UPDATE chain_checkpoints SET position = '0/0' WHERE name = 'settlement'`); err != nil {
		t.Fatal(err)
	}
	m.settle = chain.NewSettlement(m.store, m.db, m.h, quiet)
	m.settleAndPass(proc)
	if n := len(m.payouts()); n != 1 {
		t.Fatalf("replaying the settlement made %d payouts", n)
	}
	t.Logf("instant USDT payout %s: 19.95 USDT received exactly, gas %s wei paid by the hot wallet in ETH, txid %s", po.ID, gas, po.TxID)
	m.checkReplay(inv, small)
}

// 2. Manual mode, ETH: payments accrue; a withdrawal of everything to the
// configured address pays them in one transaction.
func TestScenarioManualAccrualThenWithdrawal(t *testing.T) {
	m := newMoneyOut(t)
	s := &countingSender{Sender: m.sender()}
	m.fundHot(s.Sender, "1", "")
	to := stranger(t)
	m.setPayout(domain.PayoutSettings{Asset: "ETH", PayoutAddress: to.Hex(), Mode: domain.PayoutManual})
	a, b := m.paid("ETH", "0.1"), m.paid("ETH", "0.2")
	proc := m.processor(s)
	m.settleAndPass(proc)
	if ps := m.payouts(); len(ps) != 0 {
		t.Fatalf("manual mode paid out: %+v", ps)
	}
	m.wantFunds("ETH", "0.29925", "0")

	if _, err := m.h.RequestPayout.Handle(m.ctx, commands.RequestPayout{MerchantID: m.merchant, Asset: "ETH", Amount: "0.3",
		Kind: domain.PayoutKindWithdrawal}); !errors.Is(err, domain.ErrInsufficientFunds) {
		t.Fatalf("withdrawing more than the balance: %v", err)
	}
	res, err := m.h.RequestPayout.Handle(m.ctx, commands.RequestPayout{CommandID: "wd-all", MerchantID: m.merchant, Asset: "ETH",
		Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		t.Fatal(err)
	}
	if res.Payout.Amount.String() != "0.29925" || res.Payout.ToAddress != to.Hex() {
		t.Fatalf("withdrawal %+v: want the whole balance to the configured address", res.Payout)
	}
	nonce := m.hotNonce(s.Sender)
	m.settleAndPass(proc)
	if po := m.payout(res.Payout.PayoutID); po.Status != domain.PayoutSentStatus {
		t.Fatalf("after a pass %+v", po)
	}
	m.wantFunds("ETH", "0", "0.29925")
	po := m.confirmPayout(proc, res.Payout.PayoutID)
	fee := m.wantETHPaid(po)
	if s.builds.Load() != 1 || m.payoutTxs() != 1 || m.hotNonce(s.Sender) != nonce+1 {
		t.Fatalf("builds %d, stored %d, hot wallet nonce %d → %d", s.builds.Load(), m.payoutTxs(), nonce, m.hotNonce(s.Sender))
	}
	m.wantFunds("ETH", feeReturned(po).String(), "0") // what the fee cap left unspent
	t.Logf("withdrawal %s: 0.29925 ETH − fee %s wei, txid %s", po.ID, fee, po.TxID)
	m.checkReplay(a, b)
}

// 3. Two withdrawals of the whole balance at once: one is reserved, the
// other is insufficient_funds, and one transaction goes on chain.
func TestScenarioConcurrentWithdrawalsOfTheWholeBalance(t *testing.T) {
	m := newMoneyOut(t)
	s := m.sender()
	m.fundHot(s, "1", "")
	to := stranger(t)
	m.setPayout(domain.PayoutSettings{Asset: "ETH", PayoutAddress: to.Hex(), Mode: domain.PayoutManual})
	inv := m.paid("ETH", "0.3")
	m.settleOnly()
	m.wantFunds("ETH", "0.29925", "0")

	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]commands.PayoutRequestedResult, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = m.h.RequestPayout.Handle(m.ctx, commands.RequestPayout{CommandID: fmt.Sprint("wd-", i),
				MerchantID: m.merchant, Asset: "ETH", Kind: domain.PayoutKindWithdrawal})
		}()
	}
	close(start)
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won < 0:
			won = i
		case errors.Is(err, domain.ErrInsufficientFunds):
		default:
			t.Fatalf("withdrawal %d: %v (results %+v)", i, err, results)
		}
	}
	if won < 0 {
		t.Fatalf("no withdrawal succeeded: %v", errs)
	}
	if results[won].Payout.Amount.String() != "0.29925" {
		t.Fatalf("the winner reserved %s", results[won].Payout.Amount)
	}

	// Two processors (two processes) with their own senders.
	nonce := m.hotNonce(s)
	a, b := m.processor(s), m.processor(m.sender())
	m.settleAndPass(a)
	m.settleAndPass(b)
	m.wantFunds("ETH", "0", "0.29925")
	po := m.confirmPayout(a, results[won].Payout.PayoutID)
	m.settleAndPass(b)
	if ps := m.payouts(); len(ps) != 1 {
		t.Fatalf("payouts %+v", ps)
	}
	fee := m.wantETHPaid(po)
	if m.payoutTxs() != 1 || m.hotNonce(s) != nonce+1 {
		t.Fatalf("stored payout transactions %d, hot wallet nonce %d → %d: want one transaction", m.payoutTxs(), nonce, m.hotNonce(s))
	}
	m.wantFunds("ETH", feeReturned(po).String(), "0") // what the fee cap left unspent
	t.Logf("one of two withdrawals of 0.29925 ETH: fee %s wei, txid %s", fee, po.TxID)
	m.checkReplay(inv)
}

// refusingClient is a node that refuses the first sends as an
// unreachable node would; everything else reaches the simulated chain.
type refusingClient struct {
	simulated.Client
	fails atomic.Int32
	mu    sync.Mutex
	sent  []string // the hash of every send attempt
}

func (c *refusingClient) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	c.mu.Lock()
	c.sent = append(c.sent, tx.Hash().Hex())
	c.mu.Unlock()
	if c.fails.Add(-1) >= 0 {
		return errors.New("Post \"http://127.0.0.1:8545\": dial tcp 127.0.0.1:8545: connect: connection refused")
	}
	return c.Client.SendTransaction(ctx, tx)
}

// 4. The broadcast fails twice (node unreachable), then succeeds: the
// same recorded transaction is sent each time, and only it is mined.
func TestScenarioBroadcastFailsThenRetriedWithoutDoubleSpending(t *testing.T) {
	m := newMoneyOut(t)
	client := &refusingClient{Client: m.client}
	real, err := eth.NewSender(eth.SenderConfig{Contracts: m.cfg.Contracts, Now: time.Now}, client,
		eth.SenderDeps{DB: m.db, Keys: m.wallet, Invoices: m.store, Assets: m.assets, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	s := &countingSender{Sender: real}
	m.fundHot(real, "1", "")
	to := stranger(t)
	m.setPayout(domain.PayoutSettings{Asset: "ETH", PayoutAddress: to.Hex(), Mode: domain.PayoutInstant})
	inv := m.paid("ETH", "0.3")
	nonce := m.hotNonce(real)
	client.fails.Store(2)
	proc := m.processor(s)

	var signed readapi.Payout
	for attempt := 1; attempt <= 2; attempt++ {
		m.settleAndPass(proc) // built and signed once; the broadcast fails
		ps := m.payouts()
		if len(ps) != 1 || ps[0].Status != domain.PayoutSignedStatus || ps[0].TxID == "" || (attempt > 1 && ps[0].TxID != signed.TxID) {
			t.Fatalf("after failed broadcast %d: %+v", attempt, ps)
		}
		signed = ps[0]
		var n int
		var last string
		if err := m.db.Read.QueryRow(`SELECT attempts, last_error FROM payout_jobs WHERE payout_id = ?`, signed.ID).Scan(&n, &last); err != nil ||
			n != attempt || !strings.HasPrefix(last, "broadcast:") {
			t.Fatalf("payout_jobs: attempts %d, last error %q, %v", n, last, err)
		}
	}
	if _, _, err := m.client.TransactionByHash(m.ctx, common.HexToHash(signed.TxID)); err == nil {
		t.Fatal("the node has the transaction it refused")
	}

	m.settleAndPass(proc) // the node is back
	po := m.payout(signed.ID)
	if po.Status != domain.PayoutSentStatus || po.TxID != signed.TxID {
		t.Fatalf("after the retry: %+v, signed as %s", po, signed.TxID)
	}
	po = m.confirmPayout(proc, po.ID)
	fee := m.wantETHPaid(po)
	if s.builds.Load() != 1 || m.payoutTxs() != 1 || m.hotNonce(real) != nonce+1 {
		t.Fatalf("built %d, stored %d, hot wallet nonce %d → %d: want one transaction", s.builds.Load(), m.payoutTxs(), nonce, m.hotNonce(real))
	}
	for _, h := range client.sent {
		if h != signed.TxID {
			t.Fatalf("sent %s, signed %s", h, signed.TxID)
		}
	}
	m.wantFunds("ETH", feeReturned(po).String(), "0") // what the fee cap left unspent
	t.Logf("send attempts %d (2 refused), all of %s; fee %s wei", len(client.sent), signed.TxID, fee)
	m.checkReplay(inv)
}

// crashAfterSigning is a process that dies once PayoutSigned is
// recorded: its broadcast never reaches the node, it waits for the end.
type crashAfterSigning struct {
	*eth.Sender
	signed chan chain.Signed
}

func (c *crashAfterSigning) Broadcast(ctx context.Context, tx chain.Signed) error {
	select {
	case c.signed <- tx:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

// 5. A restart between signing and broadcast: the new process (new
// processor, new sender on the same database) sends the recorded
// transaction (same hash, same nonce), without building again.
func TestScenarioRestartBetweenSigningAndBroadcast(t *testing.T) {
	m := newMoneyOut(t)
	first := &crashAfterSigning{Sender: m.sender(), signed: make(chan chain.Signed, 1)}
	m.fundHot(first.Sender, "1", "")
	m.setPayout(domain.PayoutSettings{Asset: "ETH", PayoutAddress: stranger(t).Hex(), Mode: domain.PayoutManual})
	inv := m.paid("ETH", "0.3")
	m.settleOnly()
	to := stranger(t)
	res, err := m.h.RequestPayout.Handle(m.ctx, commands.RequestPayout{CommandID: "wd-part", MerchantID: m.merchant, Asset: "ETH",
		Amount: "0.2", ToAddress: to.Hex(), Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		t.Fatal(err)
	}
	nonce := m.hotNonce(first.Sender)

	proc := m.processor(first)
	m.catchUp()
	if err := proc.CatchUp(m.ctx); err != nil {
		t.Fatal(err)
	}
	ctx, kill := context.WithCancel(m.ctx)
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	var tx chain.Signed
	select {
	case tx = <-first.signed:
	case <-time.After(5 * time.Second):
		kill()
		t.Fatal("the processor never got to broadcast")
	}
	po, err := commands.LoadPayout(m.ctx, m.store, res.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if po.Status() != domain.PayoutSignedStatus || po.Signed().TxID != tx.TxID || po.Signed().Raw != tx.Raw || tx.Nonce == nil || *tx.Nonce != nonce {
		t.Fatalf("in the log before the broadcast: %s %+v, broadcasting %+v", po.Status(), po.Signed(), tx)
	}
	kill()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	time.Sleep(20 * time.Millisecond) // its intake goroutine stops too
	if _, _, err := m.client.TransactionByHash(m.ctx, common.HexToHash(tx.TxID)); err == nil {
		t.Fatal("the killed process's transaction reached the node")
	}

	second := &countingSender{Sender: m.sender()}
	restarted := m.processor(second)
	m.settleAndPass(restarted)
	after := m.payout(res.Payout.PayoutID)
	if after.Status != domain.PayoutSentStatus || after.TxID != tx.TxID {
		t.Fatalf("after the restart %+v, signed as %s", after, tx.TxID)
	}
	if second.builds.Load() != 0 || second.broadcasts.Load() != 1 {
		t.Fatalf("the restarted sender built %d and broadcast %d times: want 0 and 1", second.builds.Load(), second.broadcasts.Load())
	}
	after = m.confirmPayout(restarted, after.ID)
	fee := m.wantETHPaid(after)
	if m.payoutTxs() != 1 || m.hotNonce(second.Sender) != nonce+1 {
		t.Fatalf("stored %d, hot wallet nonce %d → %d: want one transaction", m.payoutTxs(), nonce, m.hotNonce(second.Sender))
	}
	m.wantFunds("ETH", domain.MustAmount("0.09925").Add(feeReturned(after)).String(), "0")
	t.Logf("restart: recorded %s (nonce %d) broadcast by the new process; fee %s wei", tx.TxID, *tx.Nonce, fee)
	m.checkReplay(inv)
}
