package eth_test

import (
	"context"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
)

// deployRejecter deploys a contract that reverts every call, so every
// ETH transfer to it: its runtime is PUSH0 PUSH0 REVERT.
func (m *moneyOut) deployRejecter() common.Address {
	m.t.Helper()
	init, err := assemble(`
		PUSH3 0x5f5ffd
		PUSH1 0x00
		MSTORE
		PUSH1 0x03
		PUSH1 0x1d
		RETURN`)
	if err != nil {
		m.t.Fatal(err)
	}
	h := m.signedTx(nil, big.NewInt(0), 100_000, init)
	m.commit()
	r, err := m.client.TransactionReceipt(m.ctx, h)
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		m.t.Fatalf("deploy: %+v %v", r, err)
	}
	if code, err := m.client.CodeAt(m.ctx, r.ContractAddress, nil); err != nil || common.Bytes2Hex(code) != "5f5ffd" {
		m.t.Fatalf("deployed code %x %v", code, err)
	}
	return r.ContractAddress
}

// Issue 16 item 3: a withdrawal to a contract that rejects ETH fails its
// gas estimate ("execution reverted"). That can never succeed: the payout
// fails at once with the reason, and the funds are released.
func TestScenarioPayoutToAContractThatRejectsETHFails(t *testing.T) {
	m := newMoneyOut(t)
	s := &countingSender{Sender: m.sender()}
	m.fundHot(s.Sender, "1", "")
	to := m.deployRejecter()
	m.setPayout(domain.PayoutSettings{Asset: "ETH", PayoutAddress: stranger(t).Hex(), Mode: domain.PayoutManual})
	inv := m.paid("ETH", "0.1")
	proc := m.processor(s)
	m.settleAndPass(proc)
	res, err := m.h.RequestPayout.Handle(m.ctx, commands.RequestPayout{CommandID: "wd-rejecter", MerchantID: m.merchant, Asset: "ETH",
		ToAddress: to.Hex(), Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		t.Fatal(err)
	}
	m.settleAndPass(proc)
	po := m.payout(res.Payout.PayoutID)
	if po.Status != domain.PayoutFailedStatus || !strings.Contains(po.FailureReason, "execution reverted") {
		t.Fatalf("a payout to a contract that rejects ETH: %+v", po)
	}
	if m.payoutTxs() != 0 {
		t.Fatalf("%d payout transactions stored", m.payoutTxs())
	}
	m.wantFunds("ETH", "0.09975", "0")
	m.checkReplay(inv)
}

// Issue 16 item 8: an ETH payout's network_fee is what its receipt says
// was paid (gas used × effective gas price), not the fee cap it reserved
// when signed. The recipient got amount − the cap (the value was fixed at
// signing); what the cap left unspent goes back to the merchant's
// available balance when the payout confirms.
func TestScenarioETHPayoutNetworkFeeIsWhatTheReceiptSays(t *testing.T) {
	m := newMoneyOut(t)
	s := m.sender()
	m.fundHot(s, "1", "")
	to := stranger(t)
	m.setPayout(domain.PayoutSettings{Asset: "ETH", PayoutAddress: to.Hex(), Mode: domain.PayoutManual})
	inv := m.paid("ETH", "0.1")
	proc := m.processor(s)
	m.settleAndPass(proc)
	res, err := m.h.RequestPayout.Handle(m.ctx, commands.RequestPayout{CommandID: "wd-fee", MerchantID: m.merchant, Asset: "ETH",
		Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		t.Fatal(err)
	}
	m.settleAndPass(proc)
	capFee := *m.payout(res.Payout.PayoutID).NetworkFee // what the signed transaction may pay at most
	po := m.confirmPayout(proc, res.Payout.PayoutID)
	r, err := m.client.TransactionReceipt(m.ctx, common.HexToHash(po.TxID))
	if err != nil {
		t.Fatal(err)
	}
	paid := domain.FromBaseUnits(new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), r.EffectiveGasPrice), 18)
	if !po.NetworkFee.Equal(paid) || !paid.LessThan(capFee) {
		t.Fatalf("network_fee %s, the receipt says %s was paid (fee cap %s)", po.NetworkFee, paid, capFee)
	}
	if got := m.balance(to); got.Cmp(units(t, po.Sent.String(), 18)) != 0 || !po.Sent.Equal(po.Amount.Sub(capFee)) {
		t.Fatalf("recipient holds %s wei; sent %s = %s − %s", got, po.Sent, po.Amount, capFee)
	}
	m.wantFunds("ETH", capFee.Sub(paid).String(), "0")
	m.checkReplay(inv)
}

// cancelingSender cancels each payout right after building it: the
// merchant's cancel lands between the build and PayoutSigned.
type cancelingSender struct {
	*eth.Sender
	m *moneyOut
}

func (c cancelingSender) Build(ctx context.Context, p chain.PayoutToSend) (chain.Signed, error) {
	tx, err := c.Sender.Build(ctx, p)
	if err != nil {
		return tx, err
	}
	po, err := c.m.read.PayoutByID(ctx, c.m.merchant, p.PayoutID)
	if err != nil {
		return chain.Signed{}, err
	}
	ref := commands.PayoutRef{MerchantID: c.m.merchant, Asset: p.Asset.Code, PayoutID: p.PayoutID, RequestVersion: po.RequestVersion}
	if _, err := c.m.h.CancelPayout.Handle(ctx, commands.CancelPayout{CommandID: "cancel/" + p.PayoutID, Ref: ref}); err != nil {
		return chain.Signed{}, err
	}
	return tx, nil
}

// A payout canceled (or failed) after its transaction was built but
// before it was recorded leaves a stored transaction that is never sent;
// its nonce would hold back every later payout. It is given to a void
// transfer, and the next payout confirms.
func TestScenarioCanceledAfterItsBuildFreesItsNonce(t *testing.T) {
	m := newMoneyOut(t)
	s := m.sender()
	m.fundHot(s, "1", "")
	m.setPayout(domain.PayoutSettings{Asset: "ETH", PayoutAddress: stranger(t).Hex(), Mode: domain.PayoutManual})
	inv := m.paid("ETH", "0.1")
	racing := m.processor(cancelingSender{Sender: s, m: m})
	m.settleAndPass(racing)
	first, err := m.h.RequestPayout.Handle(m.ctx, commands.RequestPayout{CommandID: "wd-1", MerchantID: m.merchant, Asset: "ETH",
		Amount: "0.04", Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		t.Fatal(err)
	}
	nonce := m.hotNonce(s)
	m.settleAndPass(racing) // built, canceled, refused to record
	m.settleAndPass(racing) // ended: its nonce is released
	if po := m.payout(first.Payout.PayoutID); po.Status != domain.PayoutCanceledStatus {
		t.Fatalf("the raced payout: %+v", po)
	}
	proc := m.processor(s)
	second, err := m.h.RequestPayout.Handle(m.ctx, commands.RequestPayout{CommandID: "wd-2", MerchantID: m.merchant, Asset: "ETH",
		Amount: "0.05", Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		t.Fatal(err)
	}
	m.settleAndPass(proc)
	po := m.payout(second.Payout.PayoutID)
	if po.Status != domain.PayoutSentStatus {
		t.Fatalf("the next payout: %+v", po)
	}
	var voided int
	if err := m.db.Read.QueryRow(`SELECT count(*) FROM eth_txs WHERE purpose = 'void' AND ref = ?`, first.Payout.PayoutID).Scan(&voided); err != nil {
		t.Fatal(err)
	}
	m.mine(1)
	m.settleAndPass(proc)
	m.mine(confirmations - 1)
	m.settleAndPass(proc)
	if po = m.payout(second.Payout.PayoutID); po.Status != domain.PayoutConfirmedStatus || voided != 1 || m.hotNonce(s) != nonce+2 {
		t.Fatalf("the next payout %+v; void transactions %d; hot wallet nonce %d → %d", po, voided, nonce, m.hotNonce(s))
	}
	m.wantFunds("ETH", domain.MustAmount("0.04975").Add(feeReturned(po)).String(), "0")
	m.checkReplay(inv)
}
