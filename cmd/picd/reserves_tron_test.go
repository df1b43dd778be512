package main

import (
	"crypto/ecdsa"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/reserves"
)

// TestChainAuditOnTheTronFake: a gateway on the TRON fake node (the real
// HTTP API's wire format) takes a USDT.TRON payment; picd audit --chain
// agrees, the TRX the operator put in the hot wallet shown as its float.
// TRX sent to the invoice's address behind the gateway's back is named
// with its exact amount, exit 1; so is USDT moved out of it.
func TestChainAuditOnTheTronFake(t *testing.T) {
	node := tronfake.New(tronfake.Options{Now: time.Now})
	srv := httptest.NewServer(node)
	defer srv.Close()
	node.Mine(1)
	env := []string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_MNEMONIC=" + tronE2EMnemonic, "PIC_PRICES=" + tronE2EPrices,
		"PIC_TRON_API_URL=" + srv.URL, "PIC_TRON_USDT_CONTRACT=" + node.Token(), "PIC_TRON_START_BLOCK=1"}
	g := startGateway(t, env)
	key := tronSignUp(t, g)
	id, addr, _ := tronInvoice(t, g, key, "25")
	if _, err := node.Pay(addr, "USDT", 25_000_000); err != nil {
		t.Fatal(err)
	}
	node.Mine(19)
	waitFor(t, g, "paid", g.invoiceStatus(key, id), hasStatus("paid"))
	if err := node.Fund(tronHotWallet(t), 100_000_000, 0); err != nil {
		t.Fatal(err)
	}
	g.stop()

	byAsset := func(rep reservesReport) map[string]reserves.Asset {
		out := map[string]reserves.Asset{}
		for _, a := range rep.Assets {
			out[a.Asset] = a
		}
		return out
	}
	code, rep, raw := runChainAudit(t, env)
	got := byAsset(rep)
	if code != 0 || !rep.OK || got["USDT.TRON"].Ledger.String() != "25" || got["USDT.TRON"].Chain.String() != "25" ||
		got["TRX"].Float.String() != "100" || !got["TRX"].Ledger.IsZero() {
		t.Fatalf("audit --chain after the payment: exit %d\n%s", code, raw)
	}

	if _, err := node.Pay(addr, "TRX", 5_000_000); err != nil {
		t.Fatal(err)
	}
	node.Mine(1)
	code, rep, raw = runChainAudit(t, env)
	trx := byAsset(rep)["TRX"]
	if code != exitProblems || len(trx.Differ) != 1 || trx.Differ[0].Address != addr || trx.Differ[0].Diff.String() != "5" {
		t.Fatalf("audit --chain after TRX sent behind the back: exit %d\n%s", code, raw)
	}

	// 5 USDT moved out of the invoice's address with its own key (as
	// whoever holds the seed could), its TRX paying the energy: the
	// address is named, 5 USDT short.
	if err := node.Fund(addr, 20_000_000, 0); err != nil {
		t.Fatal(err)
	}
	stranger, _ := crypto.GenerateKey()
	if _, err := node.PayUSDT(tronKeyOf(t, addr), tron.EncodeAddress(tronfake.KeyAddress(stranger)), 5_000_000); err != nil {
		t.Fatal(err)
	}
	node.Mine(1)
	if _, units, _ := node.Balances(addr); units.Int64() != 20_000_000 {
		t.Fatalf("the invoice's address holds %s USDT units after the move, want 20000000", units)
	}
	code, rep, raw = runChainAudit(t, env)
	usdt := byAsset(rep)["USDT.TRON"]
	if code != exitProblems || usdt.OK || len(usdt.Differ) != 1 || usdt.Differ[0].Address != addr || usdt.Differ[0].Diff.String() != "-5" {
		t.Fatalf("audit --chain after USDT moved out behind the back: exit %d\n%s", code, raw)
	}
}

// tronKeyOf is the key the gateway's seed derives for one of its TRON
// addresses (among the first 1000).
func tronKeyOf(t *testing.T, address string) *ecdsa.PrivateKey {
	t.Helper()
	params, _ := hd.NetworkParams("mainnet")
	w, err := hd.NewWallet(tronE2EMnemonic, "", params)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 1000; i++ {
		if a, _ := w.Address(domain.ChainTron, i); a == address {
			k, err := w.PrivateKey(domain.ChainTron, i)
			if err != nil {
				t.Fatal(err)
			}
			return k.ToECDSA()
		}
	}
	t.Fatalf("%s is none of the first 1000 TRON addresses", address)
	return nil
}
