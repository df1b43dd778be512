package custody

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
)

const (
	testWords = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
	hotIndex  = 1<<31 - 1
	merchant  = "mer_test"
)

var (
	payee    = common.HexToAddress("0x1111111111111111111111111111111111111111")
	chainID  = big.NewInt(1337)
	feeCap   = big.NewInt(2_000_000_000)
	gasLimit = uint64(21_000)
)

// fixture is a signer policy over a real SQLite log and record.
type fixture struct {
	t      testing.TB
	store  *sqlite.Store
	wallet *hd.Wallet
	rec    *Record
	policy *Policy
	now    time.Time
	ids    int
}

func newFixture(t testing.TB, limits map[string]Limit) *fixture {
	t.Helper()
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rec, err := OpenRecord(filepath.Join(dir, "signer.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	w, err := hd.NewWallet(testWords, "", &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, store: store, wallet: w, rec: rec, now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	f.policy = NewPolicy(PolicyConfig{Wallet: w, Log: store, Record: rec, Assets: domain.DefaultAssets(), Limits: limits,
		EthereumHotIndex: hotIndex, Now: func() time.Time { return f.now }})
	return f
}

func (f *fixture) append(stream string, e domain.Event) {
	f.t.Helper()
	data, _ := json.Marshal(e)
	meta, _ := json.Marshal(map[string]int{"schema_version": domain.SchemaVersionOf(e.EventType())})
	f.ids++
	_, err := f.store.Append(context.Background(), stream, eventstore.Any, []eventstore.EventData{{ID: fmt.Sprintf("evt_%d", f.ids),
		Type: e.EventType(), Data: data, Metadata: meta}})
	if err != nil {
		f.t.Fatal(err)
	}
}

// request logs a withdrawal of amount ETH to payee.
func (f *fixture) request(id, amount string, kind domain.PayoutKind) {
	f.append(domain.FundsStream(merchant, "ETH"), domain.PayoutRequested{PayoutID: id, MerchantID: merchant, Asset: "ETH", Chain: domain.ChainEthereum,
		Decimals: 18, Amount: domain.MustAmount(amount), ToAddress: payee.Hex(), Kind: kind})
}

func wei(amount string) *big.Int {
	u, _ := domain.MustAmount(amount).BaseUnits(18)
	return u
}

// ethPayout is the transaction the sender builds for an ETH payout of
// amount (its fee deducted) to `to`.
func ethPayout(to common.Address, amount string, nonce uint64) *types.DynamicFeeTx {
	fee := new(big.Int).Mul(new(big.Int).SetUint64(gasLimit), feeCap)
	return &types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: big.NewInt(1), GasFeeCap: feeCap, Gas: gasLimit, To: &to,
		Value: new(big.Int).Sub(wei(amount), fee)}
}

func (f *fixture) sign(purpose, payoutID string, from int64, tx *types.DynamicFeeTx) ([]byte, error) {
	f.t.Helper()
	unsigned, err := UnsignedEthereum(tx)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.policy.Sign(context.Background(), Request{Chain: domain.ChainEthereum, Purpose: purpose, PayoutID: payoutID, MerchantID: merchant,
		Asset: "ETH", FromIndex: from, Unsigned: unsigned})
}

func decodeSigned(t *testing.T, raw []byte) (*types.Transaction, common.Address) {
	t.Helper()
	var tx types.Transaction
	if err := tx.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), &tx)
	if err != nil {
		t.Fatal(err)
	}
	return &tx, from
}

func (f *fixture) hot() common.Address {
	a, _ := f.wallet.Address(domain.ChainEthereum, hotIndex)
	return common.HexToAddress(a)
}

func TestPolicySignsWhatTheLogAsksOnce(t *testing.T) {
	f := newFixture(t, nil)
	f.request("pay_1", "0.5", domain.PayoutKindWithdrawal)
	raw, err := f.sign(PurposePayout, "pay_1", hotIndex, ethPayout(payee, "0.5", 7))
	if err != nil {
		t.Fatal(err)
	}
	tx, from := decodeSigned(t, raw)
	if from != f.hot() || *tx.To() != payee || tx.Nonce() != 7 {
		t.Fatalf("signed from %s to %s nonce %d; want the hot wallet %s to %s", from.Hex(), tx.To().Hex(), tx.Nonce(), f.hot().Hex(), payee.Hex())
	}
	again, err := f.sign(PurposePayout, "pay_1", hotIndex, ethPayout(payee, "0.5", 7))
	if err != nil || string(again) != string(raw) {
		t.Fatalf("the same request again: %v, same bytes %v", err, string(again) == string(raw))
	}
	// Another transaction for the signed payout (another nonce, or to
	// another address) gets the first one back, never a second signature.
	for _, other := range []*types.DynamicFeeTx{ethPayout(payee, "0.5", 8), ethPayout(common.HexToAddress("0x2222222222222222222222222222222222222222"), "0.5", 7)} {
		got, err := f.sign(PurposePayout, "pay_1", hotIndex, other)
		if err != nil || string(got) != string(raw) {
			t.Fatalf("a second transaction for pay_1: %v; got the first back: %v", err, string(got) == string(raw))
		}
	}
	sigs, err := f.rec.Signatures(context.Background(), 0, 10)
	if err != nil || len(sigs) != 1 || sigs[0].TxID != tx.Hash().Hex() || sigs[0].Amount.String() != "0.5" {
		t.Fatalf("record: %v %+v", err, sigs)
	}
	// The record is append-only.
	if _, err := f.rec.db.Exec(`UPDATE signed SET txid = 'x'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("update of the record: %v", err)
	}
	if _, err := f.rec.db.Exec(`DELETE FROM signed`); err == nil {
		t.Fatal("delete from the record succeeded")
	}
}

func TestPolicyRefusesWhatTheLogDoesNotAsk(t *testing.T) {
	f := newFixture(t, nil)
	f.request("pay_2", "0.5", domain.PayoutKindWithdrawal)
	f.request("pay_refund", "0.5", domain.PayoutKindRefund)
	thief := common.HexToAddress("0x3333333333333333333333333333333333333333")
	moreValue := ethPayout(payee, "0.5", 1)
	moreValue.Value = new(big.Int).Add(moreValue.Value, big.NewInt(1))
	for name, c := range map[string]struct {
		purpose, payout string
		from            int64
		tx              *types.DynamicFeeTx
		want            string
	}{
		"another destination":       {PurposePayout, "pay_2", hotIndex, ethPayout(thief, "0.5", 1), "goes to"},
		"one wei more":              {PurposePayout, "pay_2", hotIndex, moreValue, "sends"},
		"a larger amount":           {PurposePayout, "pay_2", hotIndex, ethPayout(payee, "5", 1), "sends"},
		"a payout not in the log":   {PurposePayout, "pay_none", hotIndex, ethPayout(payee, "0.5", 1), "holds no payout"},
		"from a deposit address":    {PurposePayout, "pay_2", 3, ethPayout(payee, "0.5", 1), "hot wallet"},
		"a refund less its fee":     {PurposePayout, "pay_refund", hotIndex, ethPayout(payee, "0.5", 1), "sends"},
		"a sweep to a stranger":     {PurposeSweep, "sw_1", 3, ethPayout(thief, "0.5", 1), "hot wallet"},
		"a void with value":         {PurposeVoid, "pay_2", hotIndex, ethPayout(payee, "0.5", 1), "void"},
		"a top-up to a stranger":    {PurposeTopUp, "sw_1", hotIndex, ethPayout(thief, "0.5", 1), "top-up"},
		"an unknown purpose":        {"gift", "x", hotIndex, ethPayout(payee, "0.5", 1), "purpose"},
		"a token transfer unlisted": {PurposeSweep, "sw_2", 3, tokenTransfer(thief, f.hot(), 5), "contract"},
	} {
		_, err := f.sign(c.purpose, c.payout, c.from, c.tx)
		if !errors.Is(err, ErrRefused) || !errors.Is(err, chain.ErrPermanent) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a refusal saying %q", name, err, c.want)
		}
	}
	// A canceled payout holds no reservation any more.
	f.request("pay_3", "0.5", domain.PayoutKindWithdrawal)
	f.append(domain.PayoutStream("pay_3"), domain.PayoutCanceled{PayoutID: "pay_3", MerchantID: merchant, Asset: "ETH", Amount: domain.MustAmount("0.5")})
	if _, err := f.sign(PurposePayout, "pay_3", hotIndex, ethPayout(payee, "0.5", 1)); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("canceled payout: %v", err)
	}
	if sigs, _ := f.rec.Signatures(context.Background(), 0, 10); len(sigs) != 0 {
		t.Fatalf("refused requests were recorded as signed: %+v", sigs)
	}
	// What the log asks for passes: the refund sends its exact amount, a
	// sweep and a void stay at home.
	refund := ethPayout(payee, "0.5", 1)
	refund.Value = wei("0.5")
	if _, err := f.sign(PurposePayout, "pay_refund", hotIndex, refund); err != nil {
		t.Fatalf("refund: %v", err)
	}
	hot := f.hot()
	if _, err := f.sign(PurposeSweep, "sw_1", 3, ethPayout(hot, "0.5", 0)); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	void := ethPayout(hot, "0.5", 2)
	void.Value = new(big.Int)
	if _, err := f.sign(PurposeVoid, "pay_2", hotIndex, void); err != nil {
		t.Fatalf("void: %v", err)
	}
}

func tokenTransfer(contract, to common.Address, amount int64) *types.DynamicFeeTx {
	data := append([]byte{0xa9, 0x05, 0x9c, 0xbb}, common.LeftPadBytes(to.Bytes(), 32)...)
	data = append(data, common.LeftPadBytes(big.NewInt(amount).Bytes(), 32)...)
	return &types.DynamicFeeTx{ChainID: chainID, GasTipCap: big.NewInt(1), GasFeeCap: feeCap, Gas: 60_000, To: &contract, Value: new(big.Int), Data: data}
}

func TestPolicyHoldsBeyondTheLimitUntilApproved(t *testing.T) {
	f := newFixture(t, map[string]Limit{"ETH": {Hour: domain.MustAmount("1"), Day: domain.MustAmount("1.5")}})
	ctx := context.Background()
	for _, id := range []string{"pay_a", "pay_b", "pay_c", "pay_d"} {
		f.request(id, "0.6", domain.PayoutKindWithdrawal)
	}
	if _, err := f.sign(PurposePayout, "pay_a", hotIndex, ethPayout(payee, "0.6", 1)); err != nil {
		t.Fatal(err)
	}
	_, err := f.sign(PurposePayout, "pay_b", hotIndex, ethPayout(payee, "0.6", 2))
	if !errors.Is(err, ErrHeld) || !errors.Is(err, chain.ErrHeld) || errors.Is(err, chain.ErrPermanent) ||
		!strings.Contains(err.Error(), "hourly limit of 1 ETH: 0.6 signed in the last hour, this payout 0.6; approve it with `picd signer approve pay_b`") {
		t.Fatalf("beyond the hourly limit: %v", err)
	}
	pending, err := f.rec.Pending(ctx, "")
	if err != nil || len(pending) != 1 || pending[0].PayoutID != "pay_b" || pending[0].Amount.String() != "0.6" {
		t.Fatalf("pending: %v %+v", err, pending)
	}
	if _, err := f.rec.Approve(ctx, "pay_none", f.now); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("approve of a payout not held: %v", err)
	}
	if _, err := f.rec.Approve(ctx, "pay_b", f.now); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sign(PurposePayout, "pay_b", hotIndex, ethPayout(payee, "0.6", 2)); err != nil {
		t.Fatalf("approved: %v", err)
	}
	if pending, _ := f.rec.Pending(ctx, ""); len(pending) != 0 {
		t.Fatalf("still pending after signing: %+v", pending)
	}
	// An hour later the hourly window is clear, the daily one is not:
	// 1.2 signed today, 0.6 more is past 1.5.
	f.now = f.now.Add(61 * time.Minute)
	if _, err := f.sign(PurposePayout, "pay_c", hotIndex, ethPayout(payee, "0.6", 3)); !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "daily limit of 1.5 ETH") {
		t.Fatalf("beyond the daily limit: %v", err)
	}
	f.now = f.now.Add(24 * time.Hour)
	if _, err := f.sign(PurposePayout, "pay_c", hotIndex, ethPayout(payee, "0.6", 3)); err != nil {
		t.Fatalf("a day later: %v", err)
	}
}

// Through the socket: the answers keep their kinds, the socket is 0600.
func TestServerOverUnixSocket(t *testing.T) {
	f := newFixture(t, map[string]Limit{"ETH": {Hour: domain.MustAmount("0.5")}})
	f.request("pay_ok", "0.4", domain.PayoutKindWithdrawal)
	f.request("pay_big", "0.4", domain.PayoutKindWithdrawal)
	path := filepath.Join(t.TempDir(), "signer.sock")
	ln, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v %v", fi.Mode(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := &Server{Keys: Keys{BitcoinNetwork: "regtest", Accounts: f.wallet.AccountKeys(), EthereumHotIndex: hotIndex}, Signer: f.policy}
	go srv.Serve(ctx, ln)
	c, err := Dial("unix://" + path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.Keys(ctx)
	if err != nil || k.Accounts[domain.ChainEthereum] != f.wallet.AccountKeys()[domain.ChainEthereum] {
		t.Fatalf("keys: %v %+v", err, k)
	}
	for _, s := range k.Accounts {
		if strings.Contains(s, "prv") {
			t.Fatalf("a private key over the socket: %s", s[:4])
		}
	}
	req := func(id string, tx *types.DynamicFeeTx) Request {
		u, _ := UnsignedEthereum(tx)
		return Request{Chain: domain.ChainEthereum, Purpose: PurposePayout, PayoutID: id, MerchantID: merchant, Asset: "ETH", FromIndex: hotIndex, Unsigned: u}
	}
	raw, err := c.Sign(ctx, req("pay_ok", ethPayout(payee, "0.4", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, from := decodeSigned(t, raw); from != f.hot() {
		t.Fatalf("signed by %s", from.Hex())
	}
	if _, err := c.Sign(ctx, req("pay_big", ethPayout(payee, "0.4", 2))); !errors.Is(err, chain.ErrHeld) || !strings.Contains(err.Error(), "approve it with") {
		t.Fatalf("held over the socket: %v", err)
	}
	if _, err := c.Sign(ctx, req("pay_none", ethPayout(payee, "0.4", 2))); !errors.Is(err, ErrRefused) || !errors.Is(err, chain.ErrPermanent) {
		t.Fatalf("refused over the socket: %v", err)
	}
	if _, err := ListenUnix(path); err == nil || !strings.Contains(err.Error(), "another signer") {
		t.Fatalf("a second signer on the same socket: %v", err)
	}
}
