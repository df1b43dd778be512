package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/domain"
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// signerProc is a running picd signer.
type signerProc struct {
	cmd    *exec.Cmd
	env    []string
	logs   *lockedBuffer
	socket string
}

// startSigner runs picd signer with its seed in signerDir, reading the
// gateway's SQLite log in dataDir, and waits for its socket.
func startSigner(t *testing.T, signerDir, dataDir string, extra ...string) *signerProc {
	t.Helper()
	s := &signerProc{logs: &lockedBuffer{}, socket: filepath.Join(signerDir, "signer.sock"),
		env: append([]string{"PIC_SIGNER_DATA_DIR=" + signerDir, "PIC_DATA_DIR=" + dataDir, "PIC_MNEMONIC=", "PIC_MNEMONIC_FILE="}, extra...)}
	s.cmd = exec.Command(picdBin, "signer")
	s.cmd.Env = append(os.Environ(), s.env...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Signal(syscall.SIGKILL)
			_ = s.cmd.Wait()
		}
	})
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if strings.Contains(s.logs.String(), "picd signer listening") {
			return s
		}
	}
	t.Fatalf("picd signer did not start:\n%s", s.logs)
	return nil
}

// cli runs picd signer pending|approve against the signer's directory.
func (s *signerProc) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(picdBin, append([]string{"signer"}, args...)...)
	cmd.Env = append(os.Environ(), s.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The gateway runs without any seed; a separate picd signer signs its
// Ethereum payouts on a real geth, checks each against the log, holds one
// beyond its hourly limit until approved, and refuses what the log does
// not ask for.
func TestSignerSignsPayoutsForASeedlessGateway(t *testing.T) {
	node := gethtest.Start(t)
	token := node.DeployToken("USDT", 6)
	dataDir, signerDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(signerDir, "mnemonic"), []byte(tronE2EMnemonic+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signer := startSigner(t, signerDir, dataDir, "PIC_SIGNER_LIMITS=ETH=0.5/", "PIC_ETH_USDT_CONTRACT="+token.Hex())
	if fi, err := os.Stat(signer.socket); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&fs.ModeSocket == 0 {
		t.Fatalf("signer socket: %v %v", fi.Mode(), err)
	}
	env := []string{"PIC_DATA_DIR=" + dataDir, "PIC_MNEMONIC=", "PIC_MNEMONIC_FILE=", "PIC_SIGNER=unix://" + signer.socket, "PIC_PRICES=" + tronE2EPrices,
		"PIC_ETH_RPC_URL=" + node.URL, "PIC_ETH_USDT_CONTRACT=" + token.Hex()}

	// Refused: a seed and a signer both configured for serve.
	for name, seedEnv := range map[string][]string{"PIC_MNEMONIC": {"PIC_MNEMONIC=" + tronE2EMnemonic}, "a seed file": nil} {
		if seedEnv == nil {
			seedDir := t.TempDir()
			os.WriteFile(filepath.Join(seedDir, "mnemonic"), []byte(tronE2EMnemonic), 0o600)
			seedEnv = []string{"PIC_DATA_DIR=" + seedDir}
		}
		cmd := exec.Command(picdBin, "serve")
		cmd.Env = append(append(append(os.Environ(), env...), seedEnv...), "PIC_LISTEN="+freeAddr(t), "PIC_METRICS_LISTEN=", "PIC_SIMULATOR=true")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "must hold no seed") {
			t.Fatalf("serve with %s and PIC_SIGNER: %v\n%s", name, err, out)
		}
	}

	metricsAddr := freeAddr(t)
	g := startEthGateway(t, append(env[:len(env):len(env)], "PIC_METRICS_LISTEN="+metricsAddr))
	if !strings.Contains(g.logs.String(), "this process holds no seed") {
		t.Fatalf("serve does not say it runs without a seed:\n%s", g.logs)
	}
	status, m := g.do("POST", "/v1/merchants", "", map[string]any{"name": "Signer shop"})
	if status/100 != 2 {
		t.Fatalf("sign-up: %d %v", status, m)
	}
	key, merchantID := m["secret_key"].(string), m["merchant_id"].(string)
	ethID, ethAddr := ethInvoice(t, g, key, "ETH", "1.5")
	// The watch-only address is one of the seed's own.
	if !seedDerives(t, ethAddr, 64) {
		t.Fatalf("deposit address %s is not among the seed's first addresses", ethAddr.Hex())
	}
	usdtID, usdtAddr := ethInvoice(t, g, key, "USDT.ETH", "25")
	node.Fund(ethAddr, ether("1.5"))
	node.TransferToken(token, usdtAddr, big.NewInt(25_000_000))
	node.Mine(11)
	waitFor(t, g, "ETH paid", g.invoiceStatus(key, ethID), hasStatus("paid"))
	waitFor(t, g, "USDT.ETH paid", g.invoiceStatus(key, usdtID), hasStatus("paid"))
	mineToFinal(node)
	wantBalance(t, g, key, "ETH", "1.49625", "0")
	wantBalance(t, g, key, "USDT.ETH", "24.9375", "0")
	assertNoSeed(t, dataDir, env)

	hot := ethHotWallet(t)
	node.Fund(hot, ether("2"))
	node.TransferToken(token, hot, big.NewInt(30_000_000))
	payeeKey, _ := crypto.GenerateKey()
	payee := crypto.PubkeyToAddress(payeeKey.PublicKey)
	withdraw := func(asset, amount string) string {
		status, po := g.do("POST", "/v1/withdrawals", key, map[string]any{"asset": asset, "amount": amount, "to_address": payee.Hex()})
		if status/100 != 2 {
			t.Fatalf("%s withdrawal: %d %v", asset, status, po)
		}
		return po["id"].(string)
	}
	confirm := func(id string) map[string]any {
		waitWithin(t, g, 60*time.Second, id+" sent", g.payout(key, id), hasStatus("sent"))
		node.Mine(12)
		return waitWithin(t, g, 75*time.Second, id+" confirmed", g.payout(key, id), hasStatus("confirmed"))
	}

	// Within the limit: signed by the signer, paid on chain.
	first := withdraw("ETH", "0.4")
	po := confirm(first)
	if sent, _ := domain.MustAmount(po["sent_amount"].(string)).BaseUnits(18); node.Balance(payee).Cmp(sent) != 0 {
		t.Fatalf("payee holds %s wei, the payout sent %s", node.Balance(payee), sent)
	}
	if !strings.Contains(signer.logs.String(), `"msg":"payout signed","payout_id":"`+first+`"`) {
		t.Fatalf("the signer did not sign %s:\n%s", first, signer.logs)
	}

	// The signer refuses what the log does not ask for, over its socket.
	client, err := custody.Dial("unix://" + signer.socket)
	if err != nil {
		t.Fatal(err)
	}
	second := withdraw("ETH", "0.3") // 0.4 + 0.3 > 0.5 an hour: held
	var pending string
	for deadline := time.Now().Add(45 * time.Second); !strings.Contains(pending, second); time.Sleep(300 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s not held: %s\nsigner:\n%s\npicd:\n%s", second, pending, signer.logs, g.logs)
		}
		pending, _ = signer.cli(t, "pending")
	}
	if !strings.Contains(pending, "hourly limit of 0.5 ETH: 0.4 signed in the last hour, this payout 0.3") {
		t.Fatalf("pending: %s", pending)
	}
	ask := func(id string, to common.Address, value *big.Int) error {
		tx := &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 99, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1), Gas: 21_000, To: &to, Value: value}
		unsigned, _ := custody.UnsignedEthereum(tx)
		_, err := client.Sign(context.Background(), custody.Request{Chain: domain.ChainEthereum, Purpose: custody.PurposePayout, PayoutID: id,
			MerchantID: merchantID, Asset: "ETH", FromIndex: eth.DefaultHotWalletIndex, Unsigned: unsigned})
		return err
	}
	exact := new(big.Int).Sub(ether("0.3"), big.NewInt(21_000))
	thief := common.HexToAddress("0x3333333333333333333333333333333333333333")
	for name, err := range map[string]error{
		"another destination": ask(second, thief, exact),
		"another amount":      ask(second, payee, ether("0.3")),
		"an unknown payout":   ask("po_none", payee, exact),
	} {
		if !errors.Is(err, custody.ErrRefused) || !errors.Is(err, chain.ErrPermanent) {
			t.Errorf("%s: %v, want refused", name, err)
		}
	}
	if st := g.payout(key, second)()["status"]; st != "requested" {
		t.Fatalf("held payout %s is %v, want requested while it waits", second, st)
	}
	if out, err := signer.cli(t, "approve", second); err != nil || !strings.Contains(out, "approved payout "+second) {
		t.Fatalf("approve: %v %s", err, out)
	}
	confirm(second)

	// A token payout (no limit on USDT.ETH).
	po = confirm(withdraw("USDT.ETH", "20"))
	if got := node.TokenBalance(token, payee); got.Cmp(big.NewInt(20_000_000)) != 0 {
		t.Fatalf("payee holds %s USDT base units, want 20000000 (%v)", got, po)
	}
	assertNoSeed(t, dataDir, env)
	wantSignerMetrics(t, scrape(t, metricsAddr))
}

// wantSignerMetrics: the gateway counted the signer's answers (the hourly
// limit held the second ETH payout at least once) and the deposits that
// paid the invoices, each once.
func wantSignerMetrics(t *testing.T, raw string) {
	t.Helper()
	if n := sample(t, raw, `picd_signer_requests_total{asset="ETH",purpose="payout",result="signed"}`); n < 2 {
		t.Errorf("ETH payouts signed: %v, want at least 2", n)
	}
	if n := sample(t, raw, `picd_signer_requests_total{asset="ETH",purpose="payout",result="held"}`); n < 1 {
		t.Errorf("ETH payouts held: %v, want at least 1", n)
	}
	if n := sample(t, raw, `picd_signer_requests_total{asset="USDT.ETH",purpose="payout",result="signed"}`); n < 1 {
		t.Errorf("USDT.ETH payouts signed: %v, want at least 1", n)
	}
	if n := sample(t, raw, `picd_signer_request_duration_seconds_count{purpose="payout"}`); n < 4 {
		t.Errorf("payout signing latencies: %v observed, want at least 4", n)
	}
	for _, asset := range []string{"ETH", "USDT.ETH"} {
		for _, outcome := range []string{"seen", "confirmed", "final"} {
			if n := sample(t, raw, `picd_deposits_total{asset="`+asset+`",outcome="`+outcome+`"}`); n != 1 {
				t.Errorf("%s deposits %s: %v, want 1", asset, outcome, n)
			}
		}
	}
	if n := sample(t, raw, `picd_invoice_transitions_total{status="paid"}`); n != 2 {
		t.Errorf("invoices paid: %v, want 2", n)
	}
}

// seedDerives tells whether addr is one of the seed's first n Ethereum
// receive addresses.
func seedDerives(t *testing.T, addr common.Address, n int64) bool {
	t.Helper()
	params, _ := hd.NetworkParams("mainnet")
	w, err := hd.NewWallet(tronE2EMnemonic, "", params)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < n; i++ {
		if a, _ := w.Address(domain.ChainEthereum, i); common.HexToAddress(a) == addr {
			return true
		}
	}
	return false
}

// assertNoSeed: nothing in the gateway's data directory or environment
// holds the seed's words.
func assertNoSeed(t *testing.T, dataDir string, env []string) {
	t.Helper()
	first := strings.Fields(tronE2EMnemonic)
	phrase := strings.Join(first[len(first)-4:], " ")
	for _, v := range env {
		if strings.Contains(v, phrase) || (strings.HasPrefix(v, "PIC_MNEMONIC") && !strings.HasSuffix(v, "=")) {
			t.Fatalf("the gateway's environment holds a seed: %s", v)
		}
	}
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if d.Name() == "mnemonic" {
			t.Fatalf("the gateway's data directory holds %s", path)
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, []byte(phrase)) {
			t.Fatalf("%s holds the seed's words", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The signer SIGKILLed the moment it has signed a payout (its record
// written, its answer perhaps not yet sent): after its restart the payout
// is paid by the transaction it signed, once.
func TestSignerKilledAfterSigning(t *testing.T) {
	node := gethtest.Start(t)
	token := node.DeployToken("USDT", 6)
	dataDir, signerDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(signerDir, "mnemonic"), []byte(tronE2EMnemonic+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := []string{"PIC_ETH_USDT_CONTRACT=" + token.Hex()}
	signer := startSigner(t, signerDir, dataDir, extra...)
	env := []string{"PIC_DATA_DIR=" + dataDir, "PIC_MNEMONIC=", "PIC_MNEMONIC_FILE=", "PIC_SIGNER=unix://" + signer.socket, "PIC_PRICES=" + tronE2EPrices,
		"PIC_ETH_RPC_URL=" + node.URL, "PIC_ETH_USDT_CONTRACT=" + token.Hex()}
	g := startEthGateway(t, env)
	key := tronSignUp(t, g)
	id, addr := ethInvoice(t, g, key, "ETH", "1")
	node.Fund(addr, ether("1"))
	node.Mine(11)
	waitFor(t, g, "ETH paid", g.invoiceStatus(key, id), hasStatus("paid"))
	mineToFinal(node)
	wantBalance(t, g, key, "ETH", "0.9975", "0")
	node.Fund(ethHotWallet(t), ether("2"))
	payeeKey, _ := crypto.GenerateKey()
	payee := crypto.PubkeyToAddress(payeeKey.PublicKey)
	status, po := g.do("POST", "/v1/withdrawals", key, map[string]any{"asset": "ETH", "amount": "0.5", "to_address": payee.Hex()})
	if status/100 != 2 {
		t.Fatalf("withdrawal: %d %v", status, po)
	}
	payoutID := po["id"].(string)
	signedLine := `"msg":"payout signed","payout_id":"` + payoutID + `"`
	for deadline := time.Now().Add(45 * time.Second); !strings.Contains(signer.logs.String(), signedLine); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the signer did not sign %s:\n%s", payoutID, signer.logs)
		}
	}
	_ = signer.cmd.Process.Signal(syscall.SIGKILL)
	_ = signer.cmd.Wait()
	logs := signer.logs.String()
	line := logs[strings.Index(logs, signedLine):]
	txid := line[strings.Index(line, `"txid":"`)+8:][:66]

	signer = startSigner(t, signerDir, dataDir, extra...)
	po = waitWithin(t, g, 60*time.Second, "sent after the signer's restart", g.payout(key, payoutID), hasStatus("sent"))
	if po["txid"] != txid {
		t.Fatalf("payout sent as %v, the signer signed %s", po["txid"], txid)
	}
	node.Mine(12)
	po = waitWithin(t, g, 75*time.Second, "confirmed", g.payout(key, payoutID), hasStatus("confirmed"))
	if sent, _ := domain.MustAmount(po["sent_amount"].(string)).BaseUnits(18); node.Balance(payee).Cmp(sent) != 0 {
		t.Fatalf("payee holds %s wei, the payout sent %s once", node.Balance(payee), sent)
	}
	again := strings.Contains(signer.logs.String(), "payout signed before: its transaction again")
	t.Logf("killed after signing %s; the gateway asked the restarted signer again: %v", txid, again)
}
