package tron_test

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// paidInvoice pays and confirms an invoice; it returns its id.
func (p *payouts) paidInvoice(asset, amount string) string {
	p.t.Helper()
	id, addr := p.invoice(asset, amount, 0)
	if asset == "TRX" {
		p.payTRX(addr, amount)
	} else {
		p.payUSDT(addr, amount)
	}
	p.node.mine(confirmations)
	p.scan()
	p.wantStatus(id, domain.StatusPaid)
	return id
}

// refund requests a refund of invoice, sends it and confirms it.
func (p *payouts) refund(invoice, amount, to string) readapi.Payout {
	p.t.Helper()
	res, err := p.h.RequestPayout.Refund(p.ctx, commands.RequestRefund{CommandID: "refund-" + invoice + amount, MerchantID: p.merchant,
		InvoiceID: invoice, Amount: amount, ToAddress: to})
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.proc.CatchUp(p.ctx); err != nil {
		p.t.Fatal(err)
	}
	p.pass()
	po := p.payout(res.Ref)
	if po.Status != domain.PayoutSentStatus || po.Kind != domain.PayoutKindRefund || po.SourceInvoiceID != invoice || !p.node.verifiedTx(po.TxID) {
		p.t.Fatalf("refund after a pass: %+v", po)
	}
	p.node.mine(confirmations)
	p.advance(time.Minute)
	p.pass()
	po = p.payout(res.Ref)
	if po.Status != domain.PayoutConfirmedStatus {
		p.t.Fatalf("refund: %+v", po)
	}
	if po.NetworkFee == nil || po.Sent == nil || po.Sent.String() != amount {
		p.t.Fatalf("refund %+v: want %s sent and a network fee", po, amount)
	}
	return po
}

// bookedTRX is the TRX a payout's transaction burns, as tron_payout_txs
// records it (sun).
func (p *payouts) bookedTRX(payoutID string) int64 {
	p.t.Helper()
	var feeTRX string
	if err := p.db.Read.QueryRowContext(p.ctx, p.db.Q(`SELECT fee_trx FROM tron_payout_txs WHERE payout_id = ?`), payoutID).Scan(&feeTRX); err != nil {
		p.t.Fatal(err)
	}
	u, err := domain.MustAmount(feeTRX).BaseUnits(6)
	if err != nil {
		p.t.Fatal(err)
	}
	return u.Int64()
}

// A TRX refund: the customer receives exactly the amount, to the sun; the
// bandwidth (or, for an address not yet activated, the account-creation
// fee) is burned on top, recorded as the network fee and debited from the
// merchant on top of the amount.
func TestTRXRefundFeeOnTop(t *testing.T) {
	p := withPayouts(setup(t, tron.Config{}), 500_000_000, 0)
	inv := p.paidInvoice("TRX", "100") // net 99.75
	customer, _ := crypto.GenerateKey()
	to := tron.EncodeAddress(keyAddress(customer))
	p.node.fund(keyAddress(customer), 1, 0) // an activated address
	hotBefore, _ := p.node.balances(p.sender.HotWalletAddress())

	po := p.refund(inv, "60", to)
	if sun, _ := p.node.balances(to); sun-1 != 60_000_000 {
		t.Fatalf("the customer received %s TRX, want exactly 60", domain.FromBaseUnits(big.NewInt(sun-1), 6))
	}
	feeSun, err := po.NetworkFee.BaseUnits(6)
	if err != nil || feeSun.Sign() <= 0 || po.NetworkFee.Cmp(domain.MustAmount("0.5")) > 0 {
		t.Fatalf("network fee %s: want the bandwidth burned", po.NetworkFee)
	}
	hotAfter, _ := p.node.balances(p.sender.HotWalletAddress())
	if spent := hotBefore - hotAfter; spent != 60_000_000+feeSun.Int64() || p.bookedTRX(po.ID) != feeSun.Int64() {
		t.Fatalf("the hot wallet spent %d sun, want 60 TRX + the fee %s", spent, po.NetworkFee)
	}
	p.wantBalance("TRX", domain.MustAmount("39.75").Sub(*po.NetworkFee).String(), "0")

	// To an address not yet activated: the account-creation fee (1.1 TRX
	// on the fake node) on top instead.
	fresh, _ := crypto.GenerateKey()
	to2 := tron.EncodeAddress(keyAddress(fresh))
	before := domain.MustAmount("39.75").Sub(*po.NetworkFee)
	po2 := p.refund(inv, "30", to2)
	if sun, _ := p.node.balances(to2); sun != 30_000_000 {
		t.Fatalf("the fresh customer received %d sun, want exactly 30 TRX", sun)
	}
	if po2.NetworkFee.String() != "1.1" {
		t.Fatalf("network fee to a fresh address %s, want 1.1", po2.NetworkFee)
	}
	p.wantBalance("TRX", before.Sub(domain.MustAmount("30")).Sub(*po2.NetworkFee).String(), "0")
	p.checkReplay(inv)
}

// A USDT.TRON refund: the customer receives exactly the amount in the
// token; the TRX the transfer burns (energy and bandwidth) is converted
// into the token as for any TRC-20 payout and debited from the merchant on
// top, not taken out of what is sent.
func TestUSDTRefundFeeOnTop(t *testing.T) { testUSDTRefundFeeOnTop(t, setup(t, tron.Config{})) }

// The same with the tables on Postgres.
func TestUSDTRefundFeeOnTopPostgres(t *testing.T) {
	testUSDTRefundFeeOnTop(t, setupWith(t, tron.Config{}, postgresDB))
}

func testUSDTRefundFeeOnTop(t *testing.T, e *env) {
	p := withPayouts(e, 50_000_000, 500_000_000)
	inv := p.paidInvoice("USDT.TRON", "80") // net 79.8
	customer, _ := crypto.GenerateKey()
	to := tron.EncodeAddress(keyAddress(customer))
	hotSunBefore, hotTokBefore := p.node.balances(p.sender.HotWalletAddress())

	po := p.refund(inv, "50", to)
	if _, got := p.node.balances(to); got.Int64() != 50_000_000 {
		t.Fatalf("the customer received %s USDT, want exactly 50", domain.FromBaseUnits(got, 6))
	}
	hotSun, hotTok := p.node.balances(p.sender.HotWalletAddress())
	if spent := new(big.Int).Sub(hotTokBefore, hotTok); spent.Int64() != 50_000_000 {
		t.Fatalf("the hot wallet sent %s USDT", domain.FromBaseUnits(spent, 6))
	}
	burned := hotSunBefore - hotSun
	if burned < fakeEnergyNew*210 || p.bookedTRX(po.ID) != burned {
		t.Fatalf("burned %d sun, booked %d", burned, p.bookedTRX(po.ID))
	}
	// The TRX burned at 0.25 USDT per TRX, rounded up.
	want := domain.AmountFromDecimal(domain.FromBaseUnits(big.NewInt(burned), 6).Decimal().Mul(domain.MustAmount("0.25").Decimal()).RoundUp(6))
	if !po.NetworkFee.Equal(want) {
		t.Fatalf("network fee %s USDT, want %s (%d sun burned)", po.NetworkFee, want, burned)
	}
	p.wantBalance("USDT.TRON", domain.MustAmount("29.8").Sub(*po.NetworkFee).String(), "0")
	p.checkReplay(inv)
}

// A TRX refund the hot wallet can send but not pay the fee on top of
// fails at once, nothing broadcast, and the merchant's funds come back.
func TestTRXRefundWithoutTRXForTheFee(t *testing.T) {
	p := withPayouts(setup(t, tron.Config{}), 20_000_000, 0) // exactly the refund
	inv := p.paidInvoice("TRX", "50")
	customer, _ := crypto.GenerateKey()
	p.node.fund(keyAddress(customer), 1, 0)
	broadcasts := len(p.node.Verified())
	res, err := p.h.RequestPayout.Refund(p.ctx, commands.RequestRefund{CommandID: "refund-short", MerchantID: p.merchant,
		InvoiceID: inv, Amount: "20", ToAddress: tron.EncodeAddress(keyAddress(customer))})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.proc.CatchUp(p.ctx); err != nil {
		t.Fatal(err)
	}
	p.pass()
	po := p.payout(res.Ref)
	if po.Status != domain.PayoutFailedStatus || !strings.Contains(po.FailureReason, "insufficient hot-wallet funds") ||
		!strings.Contains(po.FailureReason, "network fee on top") {
		t.Fatalf("refund: %+v", po)
	}
	if len(p.node.Verified()) != broadcasts {
		t.Fatalf("broadcasts: %v", p.node.Verified())
	}
	p.wantBalance("TRX", "49.875", "0")
	p.checkReplay(inv)
}
