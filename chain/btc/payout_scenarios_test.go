package btc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// The money-out scenarios of issue 7 on the real btcd regtest node: the
// real commands and projections, the settlement process manager, and the
// payout processor driving the real Sender. Each ends with the audit.

// moneyOut is a walletGateway wired as picd wires money out: commands
// whose credits wait for the projections (the settlement asks for them at
// the DepositConfirmed's position), the settlement, and processors.
type moneyOut struct {
	*walletGateway
	settle *chain.Settlement
	start  int64 // the node's height when the scenario began
}

func newMoneyOut(t *testing.T) *moneyOut {
	t.Helper()
	g := newWalletGateway(t)
	d := g.deps
	d.Credits = readapi.Credits{SQL: g.reader, Wait: g.runner, MaxWait: 5 * time.Second}
	g.deps = d
	g.h = commands.New(d, commands.NewIndexAllocator(d, g.wallet.Deriver()), hd.AddressCheck(g.node.params))
	return &moneyOut{walletGateway: g, settle: chain.NewSettlement(g.store, g.db, g.h, testLog()), start: g.node.tip(t)}
}

func (m *moneyOut) processor(s chain.Sender) *chain.Processor {
	return chain.NewProcessor(m.store, m.db, m.h, domain.DefaultAssets(), []chain.Sender{s},
		chain.ProcessorConfig{Now: time.Now, PollInterval: time.Millisecond, RetryBase: time.Millisecond, RetryMax: 20 * time.Millisecond,
			Logger: testLog()})
}

func (m *moneyOut) setPayout(ps domain.PayoutSettings) {
	m.t.Helper()
	if _, err := m.h.SetPayoutSettings.Handle(m.ctx, commands.SetPayoutSettings{MerchantID: m.merchant, Settings: ps}); err != nil {
		m.t.Fatal(err)
	}
}

// settleAndPass runs what follows the log once, as the service does:
// projections, settlement, projections, the processor's intake and one
// pass over the due payouts, projections.
func (m *moneyOut) settleAndPass(p *chain.Processor) {
	m.t.Helper()
	m.catchUp()
	if err := m.settle.CatchUp(m.ctx); err != nil {
		m.t.Fatal(err)
	}
	m.catchUp()
	if err := p.CatchUp(m.ctx); err != nil {
		m.t.Fatal(err)
	}
	time.Sleep(3 * time.Millisecond) // the poll interval and backoff of these processors
	if _, err := p.Pass(m.ctx); err != nil {
		m.t.Fatal(err)
	}
	m.catchUp()
}

// confirmPayout mines the asset's 2 confirmations and lets p see them.
func (m *moneyOut) confirmPayout(p *chain.Processor, id string) readapi.Payout {
	m.t.Helper()
	m.node.mine(m.t, 2)
	m.settleAndPass(p)
	po := m.payout(id)
	if po.Status != domain.PayoutConfirmedStatus {
		m.t.Fatalf("after 2 blocks: %+v", po)
	}
	return po
}

func (m *moneyOut) payouts() []readapi.Payout {
	m.t.Helper()
	page, _, err := m.reader.ListPayouts(m.ctx, m.merchant, readapi.PayoutFilter{Limit: 100})
	if err != nil {
		m.t.Fatal(err)
	}
	return page
}

func (m *moneyOut) payout(id string) readapi.Payout {
	m.t.Helper()
	po, err := m.reader.PayoutByID(m.ctx, m.merchant, id)
	if err != nil {
		m.t.Fatal(err)
	}
	return po
}

func (m *moneyOut) balance() readapi.Balance {
	m.t.Helper()
	bals, err := m.reader.Balances(m.ctx, m.merchant)
	if err != nil {
		m.t.Fatal(err)
	}
	for _, b := range bals {
		if b.Asset == "BTC" {
			return b
		}
	}
	return readapi.Balance{Asset: "BTC"}
}

func (m *moneyOut) wantFunds(available, reserved string) {
	m.t.Helper()
	b := m.balance()
	if b.Available.String() != available || b.Reserved.String() != reserved || !b.Pending.IsZero() {
		m.t.Fatalf("BTC available %s reserved %s pending %s, want %s and %s", b.Available, b.Reserved, b.Pending, available, reserved)
	}
}

// chainTxs lists the transactions in the blocks mined since the scenario
// began and in the mempool.
func (m *moneyOut) chainTxs() []*wire.MsgTx {
	m.t.Helper()
	var out []*wire.MsgTx
	for h := m.start + 1; h <= m.node.tip(m.t); h++ {
		hash, err := m.node.client.GetBlockHash(h)
		if err != nil {
			m.t.Fatal(err)
		}
		blk, err := m.node.client.GetBlock(hash)
		if err != nil {
			m.t.Fatal(err)
		}
		out = append(out, blk.Transactions...)
	}
	pool, err := m.node.client.GetRawMempool()
	if err != nil {
		m.t.Fatal(err)
	}
	for _, h := range pool {
		tx, err := m.node.client.GetRawTransaction(h)
		if err != nil {
			m.t.Fatal(err)
		}
		out = append(out, tx.MsgTx())
	}
	return out
}

// received is what addr got on chain since the scenario began (blocks and
// mempool): its balance, as the address is fresh, and how many outputs.
func (m *moneyOut) received(addr string) (sat int64, outputs int) {
	m.t.Helper()
	a, err := btcutil.DecodeAddress(addr, m.node.params)
	if err != nil {
		m.t.Fatal(err)
	}
	script, _ := txscript.PayToAddrScript(a)
	for _, tx := range m.chainTxs() {
		for _, o := range tx.TxOut {
			if string(o.PkScript) == string(script) {
				sat += o.Value
				outputs++
			}
		}
	}
	return sat, outputs
}

// walletSpends lists the transactions since the scenario began that spend
// an output of the hot wallet (any row of chain_btc_utxos).
func (m *moneyOut) walletSpends() []string {
	m.t.Helper()
	rows, err := m.db.Read.QueryContext(m.ctx, `SELECT outpoint FROM chain_btc_utxos`)
	if err != nil {
		m.t.Fatal(err)
	}
	ours := map[string]bool{}
	for rows.Next() {
		var op string
		if err := rows.Scan(&op); err != nil {
			m.t.Fatal(err)
		}
		ours[op] = true
	}
	rows.Close()
	var out []string
	for _, tx := range m.chainTxs() {
		for _, in := range tx.TxIn {
			if ours[in.PreviousOutPoint.String()] {
				out = append(out, tx.TxHash().String())
				break
			}
		}
	}
	return out
}

func (m *moneyOut) builtPayouts() int {
	m.t.Helper()
	var n int
	if err := m.db.Read.QueryRowContext(m.ctx, `SELECT count(*) FROM chain_btc_payouts`).Scan(&n); err != nil {
		m.t.Fatal(err)
	}
	return n
}

func (m *moneyOut) confirmations(txid string) int64 {
	m.t.Helper()
	h, _ := chainhash.NewHashFromStr(txid)
	r, err := m.node.client.GetRawTransactionVerbose(h)
	if err != nil {
		m.t.Fatalf("%s on chain: %v", txid, err)
	}
	return int64(r.Confirmations)
}

// wantPaid checks that the payouts (to one fresh address) reached it
// once each, every one with exactly amount − network fee in one output
// of its recorded transaction, which is what each says it sent. It
// returns the fees.
func (m *moneyOut) wantPaid(pos ...readapi.Payout) []int64 {
	m.t.Helper()
	var fees []int64
	var want int64
	for _, po := range pos {
		fee, _ := po.NetworkFee.BaseUnits(8)
		amount, _ := po.Amount.BaseUnits(8)
		net := amount.Int64() - fee.Int64()
		if po.ToAddress != pos[0].ToAddress || paidTo(m.t.(*testing.T), m.onChain(po.TxID), po.ToAddress) != net || po.Sent.String() != sats(net).String() {
			m.t.Fatalf("payout %s sent %s in %s: want %d − %d sat", po.ID, po.Sent, po.TxID, amount, fee)
		}
		fees = append(fees, fee.Int64())
		want += net
	}
	if got, outputs := m.received(pos[0].ToAddress); got != want || outputs != len(pos) {
		m.t.Fatalf("recipient got %d sat in %d outputs; want %d sat in %d", got, outputs, want, len(pos))
	}
	return fees
}

func (m *moneyOut) audit() {
	m.t.Helper()
	m.catchUp()
	m.gateway.audit()
}

// countingSender counts what the processor asks of a real Sender.
type countingSender struct {
	*Sender
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

// 1. Instant mode: a final invoice payment becomes a payout by itself,
// which the processor builds, broadcasts and, after two blocks, confirms.
// A confirmed payment that is not final yet is paid out only once final.
// An invoice below instant_min_amount accrues.
func TestScenarioInstantPayoutAfterConfirmedInvoice(t *testing.T) {
	m := newMoneyOut(t)
	to := outsider(t)
	m.setPayout(domain.PayoutSettings{Asset: "BTC", PayoutAddress: to, Mode: domain.PayoutInstant, InstantMinAmount: domain.MustAmount("0.001")})
	inv := m.newInvoice("0.01")
	small := m.newInvoice("0.0005")
	m.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.01")}, payment{small.PayAddress, sat(t, "0.0005")})
	m.scan()
	m.node.mine(t, 2)
	m.scan()
	m.wantInvoice(inv.ID, domain.StatusPaid, "0.01")
	m.wantInvoice(small.ID, domain.StatusPaid, "0.0005")

	s := &countingSender{Sender: m.sender()}
	proc := m.processor(s)
	m.settleAndPass(proc)
	if ps := m.payouts(); len(ps) != 0 {
		t.Fatalf("payouts %+v of payments not final yet", ps)
	}
	if b := m.balance(); !b.Available.IsZero() || b.Pending.String() != "0.01047375" {
		t.Fatalf("before finality: available %s pending %s, want 0 and 0.01047375", b.Available, b.Pending)
	}
	m.node.mine(t, uint32(m.w.finality-2))
	m.scan()
	m.settleAndPass(proc)
	ps := m.payouts()
	if len(ps) != 1 {
		t.Fatalf("payouts %+v: want the one instant payout", ps)
	}
	po := ps[0]
	if po.Kind != domain.PayoutKindInstant || po.SourceInvoiceID != inv.ID || po.ToAddress != to || po.Status != domain.PayoutSentStatus ||
		po.Amount.String() != "0.009975" || po.TxID == "" {
		t.Fatalf("instant payout %+v", po)
	}
	if n := m.confirmations(po.TxID); n != 0 {
		t.Fatalf("sent payout has %d confirmations, want 0 (mempool)", n)
	}
	m.wantFunds("0.00049875", "0.009975") // the small invoice accrued

	po = m.confirmPayout(proc, po.ID)
	fee := m.wantPaid(po)[0]
	m.wantFunds("0.00049875", "0")
	if s.builds.Load() != 1 || s.broadcasts.Load() != 1 || m.builtPayouts() != 1 || len(m.walletSpends()) != 1 {
		t.Fatalf("builds %d broadcasts %d stored %d wallet spends %v", s.builds.Load(), s.broadcasts.Load(), m.builtPayouts(), m.walletSpends())
	}

	// The settlement handles the whole log again: still one payout.
	if _, err := m.db.Write.Exec(`UPDATE chain_checkpoints SET position = '0/0' WHERE name = 'settlement'`); err != nil {
		t.Fatal(err)
	}
	m.settle = chain.NewSettlement(m.store, m.db, m.h, testLog())
	m.settleAndPass(proc)
	if n := len(m.payouts()); n != 1 {
		t.Fatalf("replaying the settlement made %d payouts", n)
	}
	t.Logf("instant payout %s: 997500 sat − fee %d sat = %d sat to the recipient, txid %s", po.ID, fee, 997500-fee, po.TxID)
	m.audit()
}

// 2. Manual mode: payments accrue; a withdrawal of everything to the
// configured address pays them out in one transaction.
func TestScenarioManualAccrualThenWithdrawal(t *testing.T) {
	m := newMoneyOut(t)
	to := outsider(t)
	m.setPayout(domain.PayoutSettings{Asset: "BTC", PayoutAddress: to, Mode: domain.PayoutManual})
	m.fund("0.01", "0.02")
	s := &countingSender{Sender: m.sender()}
	proc := m.processor(s)
	m.settleAndPass(proc)
	if ps := m.payouts(); len(ps) != 0 {
		t.Fatalf("manual mode paid out: %+v", ps)
	}
	m.wantFunds("0.029925", "0")

	if _, err := m.h.RequestPayout.Handle(m.ctx, commands.RequestPayout{MerchantID: m.merchant, Asset: "BTC", Amount: "0.03",
		Kind: domain.PayoutKindWithdrawal}); !errors.Is(err, domain.ErrInsufficientFunds) {
		t.Fatalf("withdrawing more than the balance: %v", err)
	}
	res, err := m.h.RequestPayout.Handle(m.ctx, commands.RequestPayout{CommandID: "wd-all", MerchantID: m.merchant, Asset: "BTC",
		Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		t.Fatal(err)
	}
	if res.Payout.Amount.String() != "0.029925" || res.Payout.ToAddress != to {
		t.Fatalf("withdrawal %+v: want the whole balance to the configured address", res.Payout)
	}
	m.settleAndPass(proc)
	po := m.payout(res.Payout.PayoutID)
	if po.Status != domain.PayoutSentStatus {
		t.Fatalf("after a pass %+v", po)
	}
	m.wantFunds("0", "0.029925")
	if tx := m.onChain(po.TxID); len(tx.TxIn) != 2 {
		t.Fatalf("%d inputs: want both deposits", len(tx.TxIn))
	}
	po = m.confirmPayout(proc, po.ID)
	fee := m.wantPaid(po)[0]
	m.wantFunds("0", "0")
	if s.builds.Load() != 1 || len(m.walletSpends()) != 1 {
		t.Fatalf("builds %d, wallet spends %v", s.builds.Load(), m.walletSpends())
	}
	t.Logf("withdrawal %s: 2992500 sat − fee %d sat, txid %s", po.ID, fee, po.TxID)
	m.audit()
}

// 3. Two withdrawals of the whole balance at once: one is reserved, the
// other is insufficient_funds, and one transaction goes on chain.
func TestScenarioConcurrentWithdrawalsOfTheWholeBalance(t *testing.T) {
	m := newMoneyOut(t)
	to := outsider(t)
	m.setPayout(domain.PayoutSettings{Asset: "BTC", PayoutAddress: to, Mode: domain.PayoutManual})
	m.fund("0.01", "0.01")
	m.wantFunds("0.01995", "0")

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
				MerchantID: m.merchant, Asset: "BTC", Kind: domain.PayoutKindWithdrawal})
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
	if results[won].Payout.Amount.String() != "0.01995" {
		t.Fatalf("the winner reserved %s", results[won].Payout.Amount)
	}

	// Two processors (two processes) with their own senders race for it.
	a, b := m.processor(m.sender()), m.processor(m.sender())
	m.settleAndPass(a)
	m.settleAndPass(b)
	po := m.payout(results[won].Payout.PayoutID)
	if po.Status != domain.PayoutSentStatus {
		t.Fatalf("after a pass %+v", po)
	}
	m.wantFunds("0", "0.01995")
	po = m.confirmPayout(a, po.ID)
	m.settleAndPass(b)
	if ps := m.payouts(); len(ps) != 1 {
		t.Fatalf("payouts %+v", ps)
	}
	fee := m.wantPaid(po)[0]
	if spends := m.walletSpends(); len(spends) != 1 || spends[0] != po.TxID || m.builtPayouts() != 1 {
		t.Fatalf("wallet spends %v, stored payouts %d: want only %s", spends, m.builtPayouts(), po.TxID)
	}
	m.wantFunds("0", "0")
	t.Logf("one of two withdrawals of 0.01995 BTC: fee %d sat, txid %s", fee, po.TxID)
	m.audit()
}

// downThenUp is the node refusing the processor's first broadcasts: they
// go through a real Sender whose RPC endpoint is a closed port (transport
// errors, temporary), then through the working one. Build always uses
// the working one.
type downThenUp struct {
	*countingSender
	down  *Sender
	fails atomic.Int32
	mu    sync.Mutex
	sent  []string // the txid of every broadcast attempt
	errs  []error
}

func (d *downThenUp) Broadcast(ctx context.Context, tx chain.Signed) error {
	d.mu.Lock()
	d.sent = append(d.sent, tx.TxID)
	d.mu.Unlock()
	if d.fails.Add(-1) >= 0 {
		err := d.down.Broadcast(ctx, tx)
		d.mu.Lock()
		d.errs = append(d.errs, err)
		d.mu.Unlock()
		return err
	}
	return d.countingSender.Broadcast(ctx, tx)
}

// 4. The broadcast fails twice (node unreachable), then succeeds: the
// same recorded transaction is sent each time, and only it reaches the
// chain.
func TestScenarioBroadcastFailsThenRetriedWithoutDoubleSpending(t *testing.T) {
	m := newMoneyOut(t)
	to := outsider(t)
	m.setPayout(domain.PayoutSettings{Asset: "BTC", PayoutAddress: to, Mode: domain.PayoutInstant})
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	down, err := NewSender(SenderConfig{Config: Config{RPCHost: "127.0.0.1:" + itoa(port), RPCUser: "test", RPCPass: "test",
		Params: m.node.params, RPCTimeout: 100 * time.Millisecond}},
		SenderDeps{DB: m.db, Keys: m.wallet, Invoices: m.store, Change: commands.NewIndexAllocator(m.deps, m.wallet.Deriver()),
			Assets: domain.DefaultAssets(), Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(down.Close)
	s := &downThenUp{countingSender: &countingSender{Sender: m.sender()}, down: down}
	s.fails.Store(2)
	proc := m.processor(s)

	m.fund("0.01") // instant: it becomes a payout
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
	for _, err := range s.errs {
		if err == nil || errors.Is(err, chain.ErrPermanent) {
			t.Fatalf("broadcast to the unreachable node: %v, want a temporary error", err)
		}
	}
	if spends := m.walletSpends(); len(spends) != 0 {
		t.Fatalf("on chain while the node was unreachable: %v", spends)
	}

	m.settleAndPass(proc) // the node is back
	po := m.payout(signed.ID)
	if po.Status != domain.PayoutSentStatus || po.TxID != signed.TxID {
		t.Fatalf("after the retry: %+v, signed as %s", po, signed.TxID)
	}
	po = m.confirmPayout(proc, po.ID)
	fee := m.wantPaid(po)[0]
	if m.confirmations(signed.TxID) != 2 {
		t.Fatalf("%s: %d confirmations", signed.TxID, m.confirmations(signed.TxID))
	}
	if s.builds.Load() != 1 || m.builtPayouts() != 1 {
		t.Fatalf("built %d times, %d stored: want once", s.builds.Load(), m.builtPayouts())
	}
	for _, txid := range s.sent {
		if txid != signed.TxID {
			t.Fatalf("broadcast %s, signed %s", txid, signed.TxID)
		}
	}
	if spends := m.walletSpends(); len(spends) != 1 || spends[0] != signed.TxID {
		t.Fatalf("wallet spends %v: want only the recorded %s", spends, signed.TxID)
	}
	m.wantFunds("0", "0")
	t.Logf("broadcast attempts %d (2 refused), all of %s; fee %d sat", len(s.sent), signed.TxID, fee)
	m.audit()
}

// crashAfterSigning is a process that dies once PayoutSigned is
// recorded: its broadcast never reaches the node, it waits for the end.
type crashAfterSigning struct {
	*Sender
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
// transaction, without building again.
func TestScenarioRestartBetweenSigningAndBroadcast(t *testing.T) {
	m := newMoneyOut(t)
	m.setPayout(domain.PayoutSettings{Asset: "BTC", PayoutAddress: outsider(t), Mode: domain.PayoutManual})
	m.fund("0.01")
	to := outsider(t)
	res, err := m.h.RequestPayout.Handle(m.ctx, commands.RequestPayout{CommandID: "wd-part", MerchantID: m.merchant, Asset: "BTC",
		Amount: "0.006", ToAddress: to, Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		t.Fatal(err)
	}

	first := &crashAfterSigning{Sender: m.sender(), signed: make(chan chain.Signed, 1)}
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
	if po.Status() != domain.PayoutSignedStatus || po.Signed().TxID != tx.TxID || po.Signed().Raw != tx.Raw {
		t.Fatalf("in the log before the broadcast: %s %+v, broadcasting %s", po.Status(), po.Signed(), tx.TxID)
	}
	kill()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	time.Sleep(20 * time.Millisecond) // its intake goroutine stops too
	first.Close()
	h, _ := chainhash.NewHashFromStr(tx.TxID)
	if _, err := m.node.client.GetRawTransaction(h); err == nil {
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
	fee := m.wantPaid(after)[0]
	if spends := m.walletSpends(); len(spends) != 1 || spends[0] != tx.TxID || m.builtPayouts() != 1 {
		t.Fatalf("wallet spends %v, stored %d: want only %s", spends, m.builtPayouts(), tx.TxID)
	}
	m.wantFunds("0.003975", "0")
	t.Logf("restart: recorded %s broadcast by the new process; fee %d sat", tx.TxID, fee)
	m.audit()
}
