package main

import (
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
)

// A signer on TCP with mutual TLS, its certificates made by picd signer
// certs: the seedless gateway's TRON payout is signed over it and paid;
// a gateway showing a client certificate of another CA, or trusting
// another CA than the signer's, does not start (and does not wait for
// the signer: the certificates must change).
func TestSignerOverMutualTLSEndToEnd(t *testing.T) {
	certs, otherCerts := filepath.Join(t.TempDir(), "certs"), filepath.Join(t.TempDir(), "other")
	for _, dir := range []string{certs, otherCerts} {
		out, err := exec.Command(picdBin, "signer", "certs", "-hosts", "localhost,127.0.0.1", dir).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "PIC_SIGNER_TLS_CLIENT_CA=") {
			t.Fatalf("picd signer certs: %v\n%s", err, out)
		}
	}
	if out, err := exec.Command(picdBin, "signer", "certs", certs).CombinedOutput(); err == nil || !strings.Contains(string(out), "never overwritten") {
		t.Fatalf("picd signer certs over existing ones: %v\n%s", err, out)
	}

	node := tronfake.New(tronfake.Options{Now: time.Now})
	srv := httptest.NewServer(node)
	defer srv.Close()
	node.Mine(1)
	dataDir, signerDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(signerDir, "mnemonic"), []byte(tronE2EMnemonic+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	signer := startSigner(t, signerDir, dataDir, "PIC_TRON_USDT_CONTRACT="+node.Token(), "PIC_SIGNER_LISTEN="+listen,
		"PIC_SIGNER_TLS_CERT="+filepath.Join(certs, custody.SignerCertFile), "PIC_SIGNER_TLS_KEY="+filepath.Join(certs, custody.SignerKeyFile),
		"PIC_SIGNER_TLS_CLIENT_CA="+filepath.Join(certs, custody.CAFile))
	if _, err := os.Stat(signer.socket); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a TCP signer made its socket too: %v", err)
	}
	// The host name is one the certificate names; the port the signer's.
	_, port, _ := strings.Cut(listen, ":")
	base := []string{"PIC_DATA_DIR=" + dataDir, "PIC_MNEMONIC=", "PIC_MNEMONIC_FILE=", "PIC_SIGNER=https://localhost:" + port, "PIC_PRICES=" + tronE2EPrices,
		"PIC_TRON_API_URL=" + srv.URL, "PIC_TRON_USDT_CONTRACT=" + node.Token(), "PIC_TRON_START_BLOCK=1"}
	tlsEnv := func(caDir, clientDir string) []string {
		return append(base[:len(base):len(base)], "PIC_SIGNER_TLS_CA="+filepath.Join(caDir, custody.CAFile),
			"PIC_SIGNER_TLS_CLIENT_CERT="+filepath.Join(clientDir, custody.ClientCertFile), "PIC_SIGNER_TLS_CLIENT_KEY="+filepath.Join(clientDir, custody.ClientKeyFile))
	}

	for name, env := range map[string][]string{
		"a client certificate of another CA": tlsEnv(certs, otherCerts),
		"trusting another CA":                tlsEnv(otherCerts, certs),
		"no client certificate":              base,
	} {
		cmd := exec.Command(picdBin, "serve")
		cmd.Env = append(append(os.Environ(), env...), "PIC_LISTEN="+freeAddr(t), "PIC_METRICS_LISTEN=", "PIC_SIMULATOR=true")
		start := time.Now()
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "PIC_SIGNER_TLS_") {
			t.Fatalf("serve with %s: %v\n%s", name, err, out)
		}
		t.Logf("serve with %s: exit %d after %s", name, exit.ExitCode(), time.Since(start).Round(time.Millisecond))
	}
	if !strings.Contains(signer.logs.String(), "TLS handshake error") {
		t.Fatalf("the signer did not log the refused handshakes:\n%s", signer.logs)
	}

	env := tlsEnv(certs, certs)
	g := startGateway(t, env)
	if !strings.Contains(g.logs.String(), "this process holds no seed") {
		t.Fatalf("serve does not say it runs without a seed:\n%s", g.logs)
	}
	key := tronSignUp(t, g)
	id, addr, _ := tronInvoice(t, g, key, "50")
	if _, err := node.Pay(addr, "USDT", 50_000_000); err != nil {
		t.Fatal(err)
	}
	node.Mine(19)
	waitFor(t, g, "paid", g.invoiceStatus(key, id), hasStatus("paid"))
	// Finality is its own event after the one that makes the invoice paid:
	// a withdrawal before it finds nothing available.
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
	po = waitWithin(t, g, 60*time.Second, payoutID+" sent", g.payout(key, payoutID), hasStatus("sent"))
	if txid := po["txid"].(string); !node.VerifiedTx(txid) {
		t.Fatalf("the fake node did not verify payout transaction %s", txid)
	}
	if !strings.Contains(signer.logs.String(), `"msg":"payout signed","payout_id":"`+payoutID+`"`) {
		t.Fatalf("the TCP signer did not sign %s:\n%s", payoutID, signer.logs)
	}
	assertNoSeed(t, dataDir, env)
}
