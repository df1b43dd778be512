//go:build linux

package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/shopspring/decimal"
)

// TestFaultBitcoinNodeDownThenBack runs picd's Bitcoin watcher against a
// real btcd on simnet, stops the node for 7 s while picd keeps running,
// starts it again on the same data directory, then pays an invoice from a
// key the test mines to and mines two blocks: the invoice becomes paid,
// its webhooks arrive once each, and the audit agrees. (Simnet, not
// regtest: btcd deletes a regtest chain at every start, so a restarted
// regtest node would come back empty.)
//
// /readyz checks the Bitcoin checkpoint only after two hours without a block; the test logs what it says
// while the node is down.
func TestFaultBitcoinNodeDownThenBack(t *testing.T) {
	bin := btcdBinary(t)
	n := newBtcNode(t, bin)
	n.start(t)
	n.generate(t, 110) // the first coinbase is mature after 100 blocks

	e := append([]string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_BTC_NETWORK=simnet", "PIC_BTC_RPC_HOST=" + n.rpcHost,
		"PIC_BTC_RPC_USER=test", "PIC_BTC_RPC_PASS=test", "PIC_BTC_P2P_HOST=" + n.p2p}, faultEnv()...)
	rc := newHookReceiver(t)
	g := startProc(t, e)
	key := signUp(t, g.gateway, rc)
	status, inv := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "BTC", "amount": "0.001"})
	if status != 201 {
		t.Fatalf("create invoice: %d %v", status, inv)
	}
	id, address, amount := inv["id"].(string), inv["pay_address"].(string), inv["pay_amount"].(string)
	// The watcher has a checkpoint before the node goes away.
	waitLog(t, g, "bitcoin watcher starts", 10*time.Second)

	// Down for longer than the watcher's poll interval (5 s), so a scan
	// starts while the node is gone. btcd's RPC client retries a refused
	// connection for about 22 s before it reports an error, so the watcher
	// sees a short outage as one slow scan, not as a failure.
	n.stop(t)
	downAt := time.Now()
	time.Sleep(3 * time.Second)
	readyDown, ready := g.do("GET", "/readyz", "", nil)
	time.Sleep(4 * time.Second)
	n.start(t)
	restartedAt := time.Now()
	if h, err := n.client.GetBlockCount(); err != nil || h < 110 {
		t.Fatalf("btcd restarted without its chain: height %d, %v", h, err)
	}
	down := restartedAt.Sub(downAt)

	sats := decimal.RequireFromString(amount).Shift(8).IntPart()
	txid := n.pay(t, address, sats)
	n.generate(t, 2)
	var paidAfter time.Duration
	for {
		_, got := g.do("GET", "/v1/invoices/"+id, key, nil)
		if got["status"] == "paid" {
			paidAfter = time.Since(restartedAt)
			break
		}
		if time.Since(restartedAt) > 40*time.Second {
			t.Fatalf("invoice not paid 40 s after the node came back: %v\n%s", got, tail(g.out.String(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The blocks came from the node's P2P port (PIC_BTC_P2P_HOST).
	waitLog(t, g, "bitcoin p2p connected", 5*time.Second)
	l := &load{acked: []string{id}, paid: []string{id}, codes: map[int]int{}}
	s := settle(t, g.url, key, l, rc, 20*time.Second)
	if len(s.duplicates) > 0 {
		t.Errorf("delivered twice without a crash: %v", s.duplicates)
	}
	g.stop()
	auditAgrees(t, e)
	if strings.Contains(g.out.String(), "bitcoin scan failed") {
		t.Logf("the watcher reported a failed scan")
	}
	t.Logf("node down %s; /readyz meanwhile %d %v; payment %s paid %s after the node came back; %s",
		down.Round(time.Millisecond), readyDown, ready["checks"], txid[:12], paidAfter.Round(time.Millisecond), s)
}

// btcdBinary builds btcd at the module's pinned version (the tool
// directive in go.mod) once per version, shared with chain/btc's tests.
func btcdBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/btcsuite/btcd").Output()
	version := strings.TrimSpace(string(out))
	if err != nil || version == "" {
		t.Fatalf("go list btcd version: %v", err)
	}
	bin := filepath.Join(os.TempDir(), fmt.Sprintf("gateway-btcd-%s-%s-%s", version, runtime.GOOS, runtime.GOARCH))
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	if out, err := exec.Command("go", "build", "-o", tmp, "github.com/btcsuite/btcd").CombinedOutput(); err != nil {
		t.Fatalf("go build btcd: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// btcNode is a btcd on simnet that mines to a key the test holds, and can
// be stopped and started again on the same data directory and ports.
type btcNode struct {
	bin, dir, rpcHost, p2p string
	params                 *chaincfg.Params
	key                    *btcec.PrivateKey
	script                 []byte
	address                string
	cmd                    *exec.Cmd
	logs                   *syncBuffer
	client                 *rpcclient.Client
	spent                  int
	// tls: the RPC server speaks TLS with the certificate btcd generates
	// at its first start (cert, under dir).
	tls  bool
	cert string
	// answered: btcd has answered once; its addresses are then the node's
	// for good (a restart keeps them).
	answered bool
}

func newBtcNode(t *testing.T, bin string) *btcNode {
	t.Helper()
	n := &btcNode{bin: bin, dir: t.TempDir(), rpcHost: freeAddr(t), p2p: freeAddr(t), params: &chaincfg.SimNetParams}
	var err error
	if n.key, err = btcec.NewPrivateKey(); err != nil {
		t.Fatal(err)
	}
	addr, err := btcutil.NewAddressPubKeyHash(btcutil.Hash160(n.key.PubKey().SerializeCompressed()), n.params)
	if err != nil {
		t.Fatal(err)
	}
	n.address = addr.EncodeAddress()
	if n.script, err = txscript.PayToAddrScript(addr); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.dir, "btcd.conf"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if n.cmd != nil && n.cmd.ProcessState == nil {
			_ = n.cmd.Process.Kill()
			_ = n.cmd.Wait()
		}
		if n.client != nil {
			n.client.Shutdown()
		}
	})
	return n
}

func (n *btcNode) start(t *testing.T) {
	t.Helper()
	n.logs = &syncBuffer{}
	security := []string{"--notls"}
	if n.tls {
		n.cert = filepath.Join(n.dir, "rpc.cert")
		security = []string{"--rpccert=" + n.cert, "--rpckey=" + filepath.Join(n.dir, "rpc.key")}
	}
	n.cmd = exec.Command(n.bin, append(security, "--simnet", "--txindex", "--rpcuser=test", "--rpcpass=test",
		"--rpclisten="+n.rpcHost, "--listen="+n.p2p, "--nodnsseed", "--configfile="+filepath.Join(n.dir, "btcd.conf"),
		"--datadir="+filepath.Join(n.dir, "data"), "--logdir="+filepath.Join(n.dir, "logs"),
		"--miningaddr="+n.address, "--debuglevel=warn")...)
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive a crashed test binary
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if n.client == nil {
		var pem []byte
		if n.tls {
			for deadline := time.Now().Add(20 * time.Second); len(pem) == 0; time.Sleep(50 * time.Millisecond) {
				if pem, _ = os.ReadFile(n.cert); len(pem) == 0 && time.Now().After(deadline) {
					t.Fatalf("btcd wrote no %s:\n%s", n.cert, n.logs)
				}
			}
		}
		c, err := rpcclient.New(&rpcclient.ConnConfig{Host: n.rpcHost, User: "test", Pass: "test", HTTPPostMode: true,
			DisableTLS: !n.tls, Certificates: pem}, nil)
		if err != nil {
			t.Fatal(err)
		}
		n.client = c
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := n.client.GetBlockCount(); err == nil {
			n.answered = true
			return
		} else if !n.answered && strings.Contains(n.logs.String(), "address already in use") {
			// Another test took the free port between freeAddr and btcd's
			// bind (packages run side by side): new ports, once more.
			_ = n.cmd.Process.Kill()
			_ = n.cmd.Wait()
			n.client.Shutdown()
			n.client, n.rpcHost, n.p2p = nil, freeAddr(t), freeAddr(t)
			n.start(t)
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("btcd did not answer: %v\n%s", err, n.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts btcd down cleanly (SIGINT) and waits for it.
func (n *btcNode) stop(t *testing.T) {
	t.Helper()
	_ = n.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = n.cmd.Process.Kill()
		<-done
		t.Fatalf("btcd did not stop on SIGINT:\n%s", n.logs)
	}
}

func (n *btcNode) generate(t *testing.T, blocks uint32) {
	t.Helper()
	if _, err := n.client.Generate(blocks); err != nil {
		t.Fatalf("generate: %v", err)
	}
}

// pay spends the next mature coinbase (block 1, 2, …) to address, change
// back to the test's key, and returns the transaction id.
func (n *btcNode) pay(t *testing.T, address string, sats int64) string {
	t.Helper()
	n.spent++
	hash, err := n.client.GetBlockHash(int64(n.spent))
	if err != nil {
		t.Fatal(err)
	}
	blk, err := n.client.GetBlock(hash)
	if err != nil {
		t.Fatal(err)
	}
	cb := blk.Transactions[0]
	tx := wire.NewMsgTx(wire.TxVersion)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: cb.TxHash(), Index: 0}, nil, nil))
	to, err := btcutil.DecodeAddress(address, n.params)
	if err != nil {
		t.Fatal(err)
	}
	toScript, err := txscript.PayToAddrScript(to)
	if err != nil {
		t.Fatal(err)
	}
	const feeSat = 10_000
	tx.AddTxOut(wire.NewTxOut(sats, toScript))
	tx.AddTxOut(wire.NewTxOut(cb.TxOut[0].Value-sats-feeSat, n.script))
	sig, err := txscript.SignatureScript(tx, 0, n.script, txscript.SigHashAll, n.key, true)
	if err != nil {
		t.Fatal(err)
	}
	tx.TxIn[0].SignatureScript = sig
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	param, _ := json.Marshal(hex.EncodeToString(buf.Bytes()))
	if _, err := n.client.RawRequest("sendrawtransaction", []json.RawMessage{param}); err != nil {
		t.Fatalf("sendrawtransaction: %v", err)
	}
	return tx.TxHash().String()
}
