package tron_test

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// A token payout's TRX is the operator's cost: when the log refuses it,
// the payout still confirms, the burn stays due beside the transaction,
// PayoutCostProblems names it, and BookPayoutCosts books it once the log
// takes it (once: a second pass adds nothing). A payout transaction the
// node never knew, past its expiration, is no longer asked for and owes
// nothing.
func TestPayoutCostBookedAgain(t *testing.T) {
	p := withPayouts(setup(t, tron.Config{}), 50_000_000, 500_000_000)
	refuse := true
	book := chain.RecordCostWith(p.h.RecordNetworkCost)
	costs := func(ctx context.Context, c commands.RecordNetworkCost) error {
		if refuse {
			return errors.New("refused by the test")
		}
		return book(ctx, c)
	}
	s, err := tron.NewSender(tron.SenderConfig{Prices: fixedPrices{}, Now: func() time.Time { return time.UnixMilli(fakeGenesisMs) }, Logger: quiet,
		Costs: costs}, p.client, p.wallet, p.db, p.assets)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { p.mu.Lock(); defer p.mu.Unlock(); return p.now }
	p.sender, p.proc = s, chain.NewProcessor(p.store, p.db, p.h, p.assets, []chain.Sender{s}, chain.ProcessorConfig{Now: clock, Logger: quiet})
	p.earn("USDT.TRON", "80")
	payee, _ := crypto.GenerateKey()
	ref := p.request("USDT.TRON", "50", tron.EncodeAddress(keyAddress(payee)))
	p.pass()
	p.node.mine(confirmations)
	p.advance(time.Minute)
	p.pass()
	po := p.payout(ref)
	info, ok := p.node.Receipt(po.TxID)
	if po.Status != domain.PayoutConfirmedStatus || !ok || info.Fee <= 0 {
		t.Fatalf("payout %+v, info %+v", po, info)
	}
	problems := func() []string {
		t.Helper()
		// As picd audit --chain audits: it keeps the costs by transaction.
		rep, err := projections.AuditWith(p.ctx, p.store, sqldb.DB{}, projections.AuditOptions{SkipReadModels: true, Addresses: true})
		if err != nil {
			t.Fatal(err)
		}
		out, err := tron.PayoutCostProblems(p.ctx, p.db, "TRX", func(txid string) *big.Int {
			u, _ := rep.CostOf(txid).BaseUnits(6)
			return u
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := problems(); len(got) != 1 || len(p.costs()) != 0 {
		t.Fatalf("with the cost refused: problems %q, costs %+v", got, p.costs())
	}
	if err := s.BookPayoutCosts(p.ctx); err == nil {
		t.Fatal("BookPayoutCosts with the log refusing: no error")
	}

	refuse = false
	for range 2 {
		if err := s.BookPayoutCosts(p.ctx); err != nil {
			t.Fatal(err)
		}
	}
	c, ok := p.costs()[po.TxID]
	if len(p.costs()) != 1 || !ok || c.Kind != domain.CostTokenPayoutGas || !c.Amount.Equal(domain.FromBaseUnits(big.NewInt(info.Fee), 6)) {
		t.Fatalf("costs %+v; the payout burned %d sun", p.costs(), info.Fee)
	}
	if got := problems(); len(got) != 0 {
		t.Fatalf("problems once booked: %q", got)
	}

	// A transaction the node never had, an hour past its expiration.
	if _, err := p.db.Write.Exec(p.db.Q(`INSERT INTO tron_payout_txs (payout_id, txid, asset, to_address, amount, network_fee, fee_trx,
		energy, bandwidth_bytes, fee_limit_sun, expiration_ms, built_at) VALUES ('po_gone', 'aa11', 'USDT.TRON', 'T', '1', '0.1', '0.4', 0, 0, 0, ?, 0)`),
		fakeGenesisMs-time.Hour.Milliseconds()); err != nil {
		t.Fatal(err)
	}
	if err := s.BookPayoutCosts(p.ctx); err != nil {
		t.Fatal(err)
	}
	var booked int
	if err := p.db.Read.QueryRow(`SELECT cost_booked FROM tron_payout_txs WHERE txid = 'aa11'`).Scan(&booked); err != nil || booked != 1 {
		t.Fatalf("a transaction never mined: cost_booked %d (%v)", booked, err)
	}
	if got := problems(); len(got) != 0 || len(p.costs()) != 1 {
		t.Fatalf("a transaction never mined: problems %q, costs %+v", got, p.costs())
	}
}
