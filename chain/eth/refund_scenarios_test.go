package eth_test

import (
	"errors"
	"testing"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
)

// Refunds on the simulated EVM (issue 19): the customer's address holds
// exactly the refund, to the wei; the gas is debited from the merchant on
// top; more than the invoice's net is refused.
func TestScenarioRefundETH(t *testing.T) {
	m := newMoneyOut(t)
	s := &countingSender{Sender: m.sender()}
	m.fundHot(s.Sender, "1", "")
	m.setPayout(domain.PayoutSettings{Asset: "ETH", PayoutAddress: stranger(t).Hex(), Mode: domain.PayoutManual})
	inv := m.paid("ETH", "0.1") // net 0.09975
	other := m.paid("ETH", "0.2")
	proc := m.processor(s)
	m.settleAndPass(proc)
	m.wantFunds("ETH", "0.29925", "0")

	customer := stranger(t)
	if _, err := m.h.RequestPayout.Refund(m.ctx, commands.RequestRefund{MerchantID: m.merchant, InvoiceID: inv, Amount: "0.09976",
		ToAddress: customer.Hex()}); !errors.Is(err, domain.ErrRefundExceeded) {
		t.Fatalf("more than the invoice's net: %v", err)
	}
	if _, err := m.h.RequestPayout.Refund(m.ctx, commands.RequestRefund{MerchantID: m.merchant, InvoiceID: inv, Amount: "0.01",
		ToAddress: "0xnot-an-address"}); !errors.Is(err, domain.ErrValidation) {
		t.Fatalf("an invalid address: %v", err)
	}
	res, err := m.h.RequestPayout.Refund(m.ctx, commands.RequestRefund{CommandID: "refund-1", MerchantID: m.merchant, InvoiceID: inv,
		Amount: "0.05", ToAddress: customer.Hex()})
	if err != nil {
		t.Fatal(err)
	}
	m.settleAndPass(proc)
	po := m.payout(res.Payout.PayoutID)
	if po.Status != domain.PayoutSentStatus || po.Kind != domain.PayoutKindRefund || po.SourceInvoiceID != inv {
		t.Fatalf("refund after a pass: %+v", po)
	}
	po = m.confirmPayout(proc, res.Payout.PayoutID)
	if got := m.balance(customer); got.Cmp(units(t, "0.05", 18)) != 0 {
		t.Fatalf("the customer holds %s wei, want exactly 0.05 ETH", got)
	}
	if po.NetworkFee == nil || !po.NetworkFee.IsPositive() || po.Sent.String() != "0.05" {
		t.Fatalf("refund %+v: the gas must be recorded, and 0.05 sent", po)
	}
	// The merchant paid 0.05 and the gas.
	m.wantFunds("ETH", domain.MustAmount("0.24925").Sub(*po.NetworkFee).String(), "0")
	t.Logf("refund %s: 0.05 ETH to the customer, gas %s ETH on top", po.ID, po.NetworkFee)
	m.checkReplay(inv, other)
}
