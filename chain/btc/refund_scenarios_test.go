package btc

import (
	"errors"
	"testing"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
)

// A refund on a real btcd (issue 19): the customer's output is exactly the
// refund, the fee of the transaction is debited from the merchant on top.
func TestScenarioRefundBTC(t *testing.T) {
	m := newMoneyOut(t)
	m.setPayout(domain.PayoutSettings{Asset: "BTC", PayoutAddress: outsider(t), Mode: domain.PayoutManual})
	inv := m.newInvoice("0.01")
	other := m.newInvoice("0.02")
	m.node.pay(m.t, feeSat, payment{inv.PayAddress, sat(m.t, "0.01")}, payment{other.PayAddress, sat(m.t, "0.02")})
	m.scan()
	m.node.mine(m.t, uint32(m.w.finality))
	m.scan()
	proc := m.processor(m.sender())
	m.settleAndPass(proc)
	m.wantFunds("0.029925", "0")

	customer := outsider(t)
	if _, err := m.h.RequestPayout.Refund(m.ctx, commands.RequestRefund{MerchantID: m.merchant, InvoiceID: inv.ID, Amount: "0.00997501",
		ToAddress: customer}); !errors.Is(err, domain.ErrRefundExceeded) {
		t.Fatalf("more than the invoice's net: %v", err)
	}
	if _, err := m.h.RequestPayout.Refund(m.ctx, commands.RequestRefund{MerchantID: m.merchant, InvoiceID: inv.ID, Amount: "0.001",
		ToAddress: "bc1-not-an-address"}); !errors.Is(err, domain.ErrValidation) {
		t.Fatalf("an invalid address: %v", err)
	}
	res, err := m.h.RequestPayout.Refund(m.ctx, commands.RequestRefund{MerchantID: m.merchant, InvoiceID: inv.ID, ToAddress: customer})
	if err != nil {
		t.Fatal(err)
	}
	if res.Payout.Amount.String() != "0.009975" {
		t.Fatalf("the default refund is the invoice's net: %+v", res.Payout)
	}
	m.settleAndPass(proc)
	po := m.payout(res.Payout.PayoutID)
	if po.Status != domain.PayoutSentStatus || po.Kind != domain.PayoutKindRefund {
		t.Fatalf("after a pass %+v", po)
	}
	if got := paidTo(t, m.onChain(po.TxID), customer); got != 997500 {
		t.Fatalf("the customer's output is %d sat, want exactly 997500", got)
	}
	po = m.confirmPayout(proc, po.ID)
	if po.NetworkFee == nil || !po.NetworkFee.IsPositive() || po.Sent.String() != "0.009975" {
		t.Fatalf("refund %+v", po)
	}
	m.wantFunds(domain.MustAmount("0.01995").Sub(*po.NetworkFee).String(), "0")
	t.Logf("refund %s: 997500 sat to the customer, fee %s BTC on top", po.ID, po.NetworkFee)
	m.audit()
}
