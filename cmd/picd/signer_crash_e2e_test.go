//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
	"github.com/acceptcryptohere/gateway/domain"
)

// signerProxy stands between picd serve and the signer's socket: the
// gateway dials its socket (unix://<proxy>). It passes every request and
// answer through, but the first payout signing request's answer, once the
// signer has given it (its record written), goes to crash instead of the
// gateway: crash kills the processes, and the gateway's connection is
// closed without an answer. That is a crash between the signature and
// picd serve recording it, which a SIGKILL alone hits only by luck.
type signerProxy struct {
	socket string
	mu     sync.Mutex
	fired  bool
	done   chan struct{} // closed once crash has returned
	// hold answers every signing request 503 (the signer busy) while set.
	hold atomic.Bool
}

func newSignerProxy(t *testing.T, signerSocket string, crash func()) *signerProxy {
	t.Helper()
	p := &signerProxy{socket: filepath.Join(t.TempDir(), "proxy.sock"), done: make(chan struct{})}
	ln, err := net.Listen("unix", p.socket)
	if err != nil {
		t.Fatal(err)
	}
	upstream := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", signerSocket)
	}, DisableKeepAlives: true}, Timeout: 30 * time.Second}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/sign" && p.hold.Load() {
			http.Error(w, "held by the test", http.StatusServiceUnavailable)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://signer"+r.URL.Path, bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := upstream.Do(req)
		if err != nil {
			http.Error(w, "signer down: "+err.Error(), http.StatusBadGateway)
			return
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var sr custody.Request
		if r.URL.Path == "/v1/sign" && resp.StatusCode == http.StatusOK && json.Unmarshal(body, &sr) == nil && sr.Purpose == custody.PurposePayout {
			p.mu.Lock()
			first := !p.fired
			p.fired = true
			p.mu.Unlock()
			if first {
				crash()
				close(p.done)
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					conn.Close()
				}
				return
			}
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return p
}

// wait waits until the processes have been killed.
func (p *signerProxy) wait(t *testing.T, g *gateway, s *signerProc) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("no payout was signed:\n%s\nsigner:\n%s", g.logs, s.logs)
	}
}

// signedTxID is the txid the signer's log gives the payout it signed.
func signedTxID(t *testing.T, logs, payoutID string) string {
	t.Helper()
	line := `"msg":"payout signed","payout_id":"` + payoutID + `"`
	i := strings.Index(logs, line)
	if i < 0 {
		t.Fatalf("the signer did not sign %s:\n%s", payoutID, logs)
	}
	rest := logs[i:]
	rest = rest[strings.Index(rest, `"txid":"`)+8:]
	return rest[:strings.IndexByte(rest, '"')]
}

// killBoth SIGKILLs picd serve and then the signer, and waits for both.
func killBoth(g *gateway, s *signerProc) {
	_ = g.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = g.cmd.Wait()
	_ = s.cmd.Wait()
}

// Both processes killed after the signer signed a Bitcoin payout and
// before picd serve had its answer. While they are down a larger deposit
// becomes final, so the payout built again after the restart spends
// another output (largest first) than the transaction the signer signed,
// which the signer answers with instead (it signs no second one): the
// gateway checks it is the payout's and ours, and the payout is paid by
// that transaction id, once; the deposit it did not spend stays ours.
func TestSignerCrashBetweenSigningAndRecordingBitcoin(t *testing.T) {
	n := newBtcNode(t, btcdBinary(t))
	n.start(t)
	n.generate(t, 310) // SegWit is active on simnet from block 300
	dataDir, signerDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(signerDir, "mnemonic"), []byte(tronE2EMnemonic+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signerEnv := []string{"PIC_BTC_NETWORK=simnet"}
	signer := startSigner(t, signerDir, dataDir, signerEnv...)
	var g *gateway
	proxy := newSignerProxy(t, signer.socket, func() { killBoth(g, signer) })
	env := []string{"PIC_DATA_DIR=" + dataDir, "PIC_MNEMONIC=", "PIC_MNEMONIC_FILE=", "PIC_SIGNER=unix://" + proxy.socket, "PIC_PRICES=" + tronE2EPrices,
		"PIC_BTC_NETWORK=simnet", "PIC_BTC_RPC_HOST=" + n.rpcHost, "PIC_BTC_RPC_USER=test", "PIC_BTC_RPC_PASS=test"}
	g = startGateway(t, env)
	key := tronSignUp(t, g)
	invoice := func(amount string) (string, int64) {
		status, inv := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "BTC", "amount": amount})
		if status != 201 {
			t.Fatalf("create invoice: %d %v", status, inv)
		}
		return inv["pay_address"].(string), decimal.RequireFromString(inv["pay_amount"].(string)).Shift(8).IntPart()
	}
	addr1, sats1 := invoice("0.5")
	addr2, sats2 := invoice("1")
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(g.logs.String(), "bitcoin watcher starts"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no bitcoin scan:\n%s", g.logs)
		}
	}
	n.pay(t, addr1, sats1)
	n.generate(t, 7) // final at 6
	wantBalance(t, g, key, "BTC", "0.49875", "0")

	payeeKey, _ := btcec.NewPrivateKey()
	payee, _ := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(payeeKey.PubKey().SerializeCompressed()), &chaincfg.SimNetParams)
	payeeScript, _ := txscript.PayToAddrScript(payee)
	status, po := g.do("POST", "/v1/withdrawals", key, map[string]any{"asset": "BTC", "amount": "0.1", "to_address": payee.EncodeAddress()})
	if status/100 != 2 {
		t.Fatalf("BTC withdrawal: %d %v", status, po)
	}
	payoutID := po["id"].(string)
	proxy.wait(t, g, signer)
	txid := signedTxID(t, signer.logs.String(), payoutID)

	// Down: a deposit larger than the first becomes final. The gateway
	// starts again (it needs the signer's keys) and sees it before it
	// may ask for a signature.
	second := n.pay(t, addr2, sats2)
	n.generate(t, 7)
	proxy.hold.Store(true)
	signer = startSigner(t, signerDir, dataDir, signerEnv...)
	g = startGateway(t, env)
	wantBalance(t, g, key, "BTC", "1.39625", "0") // 0.49875 − 0.1 reserved + 0.9975
	proxy.hold.Store(false)

	po = waitWithin(t, g, 180*time.Second, payoutID+" sent after both restarts", g.payout(key, payoutID), hasStatus("sent"))
	if po["txid"] != txid {
		t.Fatalf("payout sent as %v, the signer signed %s\ngateway:\n%s", po["txid"], txid, g.logs)
	}
	if !strings.Contains(signer.logs.String(), "payout signed before: its transaction again") {
		t.Fatalf("the restarted signer was not asked again:\n%s", signer.logs)
	}
	if !strings.Contains(g.logs.String(), "the transaction the signer signed before is the payout's") {
		t.Fatalf("the gateway did not say it took the signer's earlier transaction:\n%s", g.logs)
	}
	n.generate(t, 2)
	po = waitWithin(t, g, 75*time.Second, payoutID+" confirmed", g.payout(key, payoutID), hasStatus("confirmed"))
	hash, _ := chainhash.NewHashFromStr(txid)
	tx, err := n.client.GetRawTransaction(hash)
	if err != nil {
		t.Fatal(err)
	}
	want := decimal.RequireFromString(po["sent_amount"].(string)).Shift(8).IntPart()
	paid := 0
	for _, out := range tx.MsgTx().TxOut {
		if bytes.Equal(out.PkScript, payeeScript) && out.Value == want {
			paid++
		}
	}
	if paid != 1 {
		t.Fatalf("transaction %s pays the payee %d outputs of %d sat, want 1", txid, paid, want)
	}
	// Sent once: the larger deposit, which the rebuilt transaction would
	// have spent, is still unspent on the node.
	secondHash, _ := chainhash.NewHashFromStr(second)
	for vout := uint32(0); vout < 2; vout++ {
		out, err := n.client.GetTxOut(secondHash, vout, true)
		if err != nil {
			t.Fatal(err)
		}
		if out != nil && out.ScriptPubKey.Address == addr2 {
			wantBalance(t, g, key, "BTC", "1.39625", "0")
			return
		}
	}
	t.Fatalf("the deposit %s to %s was spent: a second transaction for the payout?", second, addr2)
}

// Both processes killed after the signer signed a TRON payout and before
// picd serve had its answer: the payout built again after the restart
// has another reference block and expiration, so the signer answers with
// the transaction it signed (it signs no second one); the gateway checks
// it is the payout's from the hot wallet, and the payout is paid by that
// transaction id, once.
func TestSignerCrashBetweenSigningAndRecordingTron(t *testing.T) {
	node := tronfake.New(tronfake.Options{Now: time.Now})
	srv := httptest.NewServer(node)
	defer srv.Close()
	node.Mine(1)
	dataDir, signerDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(signerDir, "mnemonic"), []byte(tronE2EMnemonic+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signerEnv := []string{"PIC_TRON_USDT_CONTRACT=" + node.Token()}
	signer := startSigner(t, signerDir, dataDir, signerEnv...)
	var g *gateway
	proxy := newSignerProxy(t, signer.socket, func() { killBoth(g, signer) })
	env := []string{"PIC_DATA_DIR=" + dataDir, "PIC_MNEMONIC=", "PIC_MNEMONIC_FILE=", "PIC_SIGNER=unix://" + proxy.socket, "PIC_PRICES=" + tronE2EPrices,
		"PIC_TRON_API_URL=" + srv.URL, "PIC_TRON_USDT_CONTRACT=" + node.Token(), "PIC_TRON_START_BLOCK=1"}
	g = startGateway(t, env)
	key := tronSignUp(t, g)
	id, addr, _ := tronInvoice(t, g, key, "50")
	if _, err := node.Pay(addr, "USDT", 50_000_000); err != nil {
		t.Fatal(err)
	}
	node.Mine(19)
	waitFor(t, g, "paid", g.invoiceStatus(key, id), hasStatus("paid"))
	wantTronBalance(t, g, key, "49.875", "0")
	if err := node.Fund(tronHotWallet(t), 200_000_000, 60_000_000); err != nil {
		t.Fatal(err)
	}
	payeeKey, _ := crypto.GenerateKey()
	payee := tron.EncodeAddress(tronfake.KeyAddress(payeeKey))
	status, po := g.do("POST", "/v1/withdrawals", key, map[string]any{"asset": "USDT.TRON", "amount": "20", "to_address": payee})
	if status/100 != 2 {
		t.Fatalf("withdrawal: %d %v", status, po)
	}
	payoutID := po["id"].(string)
	proxy.wait(t, g, signer)
	txid := signedTxID(t, signer.logs.String(), payoutID)

	node.Mine(2) // another reference block for the rebuilt transaction
	signer = startSigner(t, signerDir, dataDir, signerEnv...)
	g = startGateway(t, env)
	po = waitWithin(t, g, 180*time.Second, payoutID+" sent after both restarts", g.payout(key, payoutID), hasStatus("sent"))
	if po["txid"] != txid {
		t.Fatalf("payout sent as %v, the signer signed %s\ngateway:\n%s", po["txid"], txid, g.logs)
	}
	if !strings.Contains(signer.logs.String(), "payout signed before: its transaction again") {
		t.Fatalf("the restarted signer was not asked again:\n%s", signer.logs)
	}
	if !strings.Contains(g.logs.String(), "the transaction the signer signed before is the payout's") {
		t.Fatalf("the gateway did not say it took the signer's earlier transaction:\n%s", g.logs)
	}
	if !node.VerifiedTx(txid) {
		t.Fatalf("the fake node did not verify %s", txid)
	}
	node.Mine(20)
	waitWithin(t, g, 75*time.Second, payoutID+" confirmed", g.payout(key, payoutID), hasStatus("confirmed"))
	sent := domain.MustAmount(po["sent_amount"].(string))
	if _, got, _ := node.Balances(payee); domain.FromBaseUnits(got, 6).String() != sent.String() {
		t.Fatalf("payee holds %s USDT units, the payout sent %s once", got, sent)
	}
	var payouts int
	for _, v := range node.Verified() {
		if raw, ok := node.SignedBytes(v); ok {
			if r, _, err := tron.UnmarshalTransaction(raw); err == nil {
				if tr, err := tron.ReadTransfer(r); err == nil && tr.To == payee {
					payouts++
				}
			}
		}
	}
	if payouts != 1 {
		t.Fatalf("the node holds %d transactions to the payee, want 1", payouts)
	}
}

// Both processes killed after the signer signed an Ethereum payout and
// before picd serve had its answer (TestSignerKilledAfterSigning kills
// the signer at its log line, which the gateway may already have read):
// blocks are mined meanwhile, so the payout built again after the restart
// has other fees; the signer answers with the transaction it signed, the
// gateway stores it, nonce and value included, and the payout is paid by
// that transaction id, once.
func TestSignerCrashBetweenSigningAndRecordingEthereum(t *testing.T) {
	node := gethtest.Start(t)
	token := node.DeployToken("USDT", 6)
	dataDir, signerDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(signerDir, "mnemonic"), []byte(tronE2EMnemonic+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signerEnv := []string{"PIC_ETH_USDT_CONTRACT=" + token.Hex()}
	signer := startSigner(t, signerDir, dataDir, signerEnv...)
	var g *gateway
	proxy := newSignerProxy(t, signer.socket, func() { killBoth(g, signer) })
	env := []string{"PIC_DATA_DIR=" + dataDir, "PIC_MNEMONIC=", "PIC_MNEMONIC_FILE=", "PIC_SIGNER=unix://" + proxy.socket, "PIC_PRICES=" + tronE2EPrices,
		"PIC_ETH_RPC_URL=" + node.URL, "PIC_ETH_USDT_CONTRACT=" + token.Hex()}
	g = startEthGateway(t, env)
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
	proxy.wait(t, g, signer)
	txid := signedTxID(t, signer.logs.String(), payoutID)

	node.Mine(5) // other fees for the rebuilt transaction
	signer = startSigner(t, signerDir, dataDir, signerEnv...)
	g = startEthGateway(t, env)
	po = waitWithin(t, g, 180*time.Second, payoutID+" sent after both restarts", g.payout(key, payoutID), hasStatus("sent"))
	if po["txid"] != txid {
		t.Fatalf("payout sent as %v, the signer signed %s\ngateway:\n%s", po["txid"], txid, g.logs)
	}
	if !strings.Contains(signer.logs.String(), "payout signed before: its transaction again") {
		t.Fatalf("the restarted signer was not asked again:\n%s", signer.logs)
	}
	if !strings.Contains(g.logs.String(), "the signer returned the transaction it signed before for this payout") {
		t.Fatalf("the rebuilt transaction was the signer's: the crash changed nothing to take over\n%s", g.logs)
	}
	node.Mine(12)
	po = waitWithin(t, g, 75*time.Second, payoutID+" confirmed", g.payout(key, payoutID), hasStatus("confirmed"))
	if sent, _ := domain.MustAmount(po["sent_amount"].(string)).BaseUnits(18); node.Balance(payee).Cmp(sent) != 0 {
		t.Fatalf("payee holds %s wei, the payout sent %s once", node.Balance(payee), sent)
	}
}
