package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/ethereum/go-ethereum/crypto"
)

// nodeProxy is one RPC URL in front of a node the test can swap, as an
// operator's load balancer or a changed DNS name would.
type nodeProxy struct {
	srv    *httptest.Server
	target atomic.Pointer[url.URL]
}

func newNodeProxy(t *testing.T, to string) *nodeProxy {
	p := &nodeProxy{}
	p.point(t, to)
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(p.target.Load()) }}
	p.srv = httptest.NewServer(rp)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *nodeProxy) point(t *testing.T, to string) {
	u, err := url.Parse(to)
	if err != nil {
		t.Fatal(err)
	}
	p.target.Store(u)
}

// readyz is /readyz's status code and its chain_<chain> check.
func (g *gateway) readyz(chain string) map[string]any {
	status, m := g.do("GET", "/readyz", "", nil)
	checks, _ := m["checks"].(map[string]any)
	return map[string]any{"http_status": status, "check": checks["chain_"+chain]}
}

func metricsText(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestEthereumNodeSwap (#16 item 1): the gateway's RPC URL is pointed, while
// it runs, at a fresh geth --dev of the same chain id (1337) and genesis
// that is ahead of it. Before, the watcher took the other chain for a reorg and reverted
// a confirmed, paid deposit (the invoice stayed paid with nothing
// received). Now it stops scanning: no reversal, /readyz fails saying what
// it expected and found, the metric shows it, one error is logged; with
// the first node back, scanning resumes and a new payment is paid.
func TestEthereumNodeSwap(t *testing.T) {
	// geth --dev makes the same genesis block every time: B is A's chain
	// id and genesis, with another history from block 1 on.
	a, b := gethtest.Start(t), gethtest.Start(t)
	proxy := newNodeProxy(t, a.URL)
	metrics := freeAddr(t)
	env := []string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_MNEMONIC=" + tronE2EMnemonic, "PIC_PRICES=" + tronE2EPrices,
		"PIC_ETH_RPC_URL=" + proxy.srv.URL, "PIC_METRICS_LISTEN=" + metrics}
	g := startEthGateway(t, env)
	key := tronSignUp(t, g)

	// #16 item 8: the hot wallet is logged in its EIP-55 form.
	if hot := ethHotWallet(t).Hex(); !strings.Contains(g.logs.String(), hot) {
		t.Errorf("the log does not name the hot wallet as %s:\n%s", hot, g.logs)
	}

	id, addr := ethInvoice(t, g, key, "ETH", "0.5")
	a.Fund(addr, ether("0.5"))
	a.Mine(11)
	waitFor(t, g, "ETH paid on node A", g.invoiceStatus(key, id), hasStatus("paid"))
	wantBalance(t, g, key, "ETH", "0", "0.49875")
	mineToFinal(a)
	wantBalance(t, g, key, "ETH", "0.49875", "0")
	hot := ethHotWallet(t)
	a.Fund(hot, ether("1"))

	// B, a chain of its own, ahead of A: its blocks do not follow ours.
	b.MineTo(a.Head() + 5)
	proxy.point(t, b.URL)
	r := waitWithin(t, g, 45*time.Second, "readyz failing with the swap", func() map[string]any { return g.readyz("eth") },
		func(m map[string]any) bool { return m["http_status"] == 503 && m["check"] != "ok" && m["check"] != nil })
	check, _ := r["check"].(string)
	for _, want := range []string{"node identity mismatch", "expected a chain holding the blocks scanned", "none of the blocks scanned is on the node's chain"} {
		if !strings.Contains(check, want) {
			t.Fatalf("readyz check %q does not say %q", check, want)
		}
	}
	if m := metricsText(t, metrics); !strings.Contains(m, `picd_chain_identity_mismatch{chain="eth"} 1`) {
		t.Errorf("metrics do not show the mismatch:\n%s", m)
	}
	// A withdrawal asked for meanwhile is neither signed nor sent to B
	// (where it would confirm while the payee, on A, gets nothing): it
	// waits, and is not failed for it.
	payeeKey, _ := crypto.GenerateKey()
	payee := crypto.PubkeyToAddress(payeeKey.PublicKey)
	status, po := g.do("POST", "/v1/withdrawals", key, map[string]any{"asset": "ETH", "amount": "0.2", "to_address": payee.Hex()})
	if status/100 != 2 {
		t.Fatalf("withdrawal: %d %v", status, po)
	}
	poID := po["id"].(string)
	// Several polls (5 s each) on B, which grows meanwhile.
	for range 3 {
		b.Mine(2)
		time.Sleep(5 * time.Second)
	}
	inv := waitFor(t, g, "invoice", g.invoiceStatus(key, id), func(map[string]any) bool { return true })
	if inv["status"] != "paid" || inv["amount_received"] != "0.5" {
		t.Fatalf("after the swap the invoice is %v %v, want paid 0.5", inv["status"], inv["amount_received"])
	}
	wantBalance(t, g, key, "ETH", "0.29875", "0")
	if po := g.payout(key, poID)(); po["status"] != "requested" || po["txid"] != nil || po["failure_reason"] != nil {
		t.Fatalf("the withdrawal during the swap: %v, want requested, nothing signed", po)
	}
	if b.Balance(payee).Sign() != 0 || !strings.Contains(g.logs.String(), "payout waits for the chain's recorded node") {
		t.Fatalf("the withdrawal reached node B (payee holds %s there) or its wait is not logged", b.Balance(payee))
	}
	logs := g.logs.String()
	if strings.Contains(logs, "deposit reverted") || strings.Contains(logs, `"msg":"eth: reorg`) {
		t.Fatalf("the swap was taken for a reorg:\n%s", logs)
	}
	if n := strings.Count(logs, `"msg":"eth: node identity mismatch`); n != 1 {
		t.Fatalf("%d identity errors logged over several polls, want 1:\n%s", n, logs)
	}

	// Nobody is sent to pay on a chain the gateway does not watch.
	if status, m := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "ETH", "amount": "0.25"}); status != 503 {
		t.Fatalf("ETH invoice while the node is of another chain: %d %v", status, m)
	}

	// A is back: scanning resumes, and a new payment is paid.
	a.Mine(1) // a block to scan, so the checkpoint moves
	proxy.point(t, a.URL)
	waitWithin(t, g, 45*time.Second, "readyz ok with node A back", func() map[string]any { return g.readyz("eth") },
		func(m map[string]any) bool { return m["http_status"] == 200 && m["check"] == "ok" })
	// The address guard reads the stored mismatch at most once per
	// identityGuardTTL: the 503 above may stand that long.
	time.Sleep(identityGuardTTL)
	id2, addr2 := ethInvoice(t, g, key, "ETH", "0.25")
	a.Fund(addr2, ether("0.25"))
	a.Mine(11)
	waitWithin(t, g, 45*time.Second, "ETH paid after the swap back", g.invoiceStatus(key, id2), hasStatus("paid"))
	po = waitWithin(t, g, 45*time.Second, "the withdrawal sent to A", g.payout(key, poID), hasStatus("sent"))
	a.Mine(12)
	po = waitWithin(t, g, 75*time.Second, "the withdrawal confirmed on A", g.payout(key, poID), hasStatus("confirmed"))
	if want, _ := domain.MustAmount(po["sent_amount"].(string)).BaseUnits(18); a.Balance(payee).Cmp(want) != 0 {
		t.Fatalf("the payee holds %s wei on A, the payout sent %v", a.Balance(payee), po)
	}
	if !strings.Contains(g.logs.String(), "scanning resumes") {
		t.Errorf("the resumption is not logged")
	}
	if m := metricsText(t, metrics); !strings.Contains(m, `picd_chain_identity_mismatch{chain="eth"} 0`) {
		t.Errorf("metrics still show a mismatch:\n%s", m)
	}
	g.stop()
	auditAgrees(t, env)
}

// The node settings of #16 items 1 and 7: a cookie file replaces the user
// and password (both set is refused), the certificate must be readable,
// the Bitcoin P2P host comes with an RPC host, and the Ethereum chain id
// is a number.
func TestNodeConnectionConfig(t *testing.T) {
	c, err := parseConfig([]string{"-btc-rpc-cookie", "/var/lib/bitcoind/.cookie", "-btc-rpc-cert", "/etc/btcd/rpc.cert", "-eth-chain-id", "1"})
	if err != nil || c.BTCRPCCookie != "/var/lib/bitcoind/.cookie" || c.BTCRPCCert != "/etc/btcd/rpc.cert" || c.ETHChainID != 1 {
		t.Fatalf("flags: %+v %v", c, err)
	}
	if _, err := parseConfig([]string{"-btc-rpc-cookie", "/x/.cookie", "-btc-rpc-user", "u"}); err == nil || !strings.Contains(err.Error(), "PIC_BTC_RPC_COOKIE") {
		t.Fatalf("cookie and user: %v", err)
	}
	// Blocks over P2P: the RPC still names them, so it is required, and the
	// peer's address must be host:port.
	if _, err := parseConfig([]string{"-btc-p2p-host", "node:8333"}); err == nil || !strings.Contains(err.Error(), "needs PIC_BTC_RPC_HOST") {
		t.Fatalf("p2p without rpc: %v", err)
	}
	if _, err := parseConfig([]string{"-btc-rpc-host", "node:8332", "-btc-p2p-host", "node"}); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Fatalf("p2p without a port: %v", err)
	}
	if c, err := parseConfig([]string{"-btc-rpc-host", "node:8332", "-btc-p2p-host", "node:8333"}); err != nil || c.BTCP2PHost != "node:8333" {
		t.Fatalf("p2p host: %+v %v", c, err)
	}
	t.Setenv("PIC_ETH_CHAIN_ID", "mainnet")
	if _, err := parseConfig(nil); err == nil {
		t.Fatal("a chain id that is not a number was accepted")
	}
	c.BTCRPCHost, c.BTCRPCCert = "node:8334", filepath.Join(t.TempDir(), "missing.cert")
	params, _ := hd.NetworkParams("mainnet")
	w, err := hd.NewWallet(tronE2EMnemonic, "", params)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := btcConfig(c, w); err == nil || !strings.Contains(err.Error(), "PIC_BTC_RPC_CERT") {
		t.Fatalf("a missing certificate: %v", err)
	}
}
