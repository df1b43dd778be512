package btc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// A real btcd in regtest, built from the module's own pinned version (the
// tool directive in go.mod) and shared by the tests of this package. Tests
// that use it run one after another: they mine and reorganize one chain.

var (
	nodeOnce sync.Once
	theNode  *btcdNode
	nodeErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if theNode != nil {
		theNode.stop()
	}
	os.Exit(code)
}

type coin struct {
	op    wire.OutPoint
	value int64
}

type btcdNode struct {
	cmd     *exec.Cmd
	dir     string
	rpcHost string
	p2pHost string
	client  *rpcclient.Client
	params  *chaincfg.Params

	minerKey    *btcec.PrivateKey
	minerScript []byte
	coins       []coin
}

// testNode starts btcd once for the package's tests.
func testNode(t testing.TB) *btcdNode {
	t.Helper()
	nodeOnce.Do(func() { theNode, nodeErr = startNode() })
	if nodeErr != nil {
		t.Fatalf("btcd: %v", nodeErr)
	}
	return theNode
}

// btcdBinary builds btcd once per version into the system temp directory.
func btcdBinary() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/btcsuite/btcd").Output()
	version := strings.TrimSpace(string(out))
	if err != nil || version == "" {
		return "", fmt.Errorf("go list btcd version: %v", err)
	}
	bin := filepath.Join(os.TempDir(), fmt.Sprintf("gateway-btcd-%s-%s-%s", version, runtime.GOOS, runtime.GOARCH))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, "github.com/btcsuite/btcd")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build btcd: %v\n%s", err, out)
	}
	return bin, os.Rename(tmp, bin)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startNode() (*btcdNode, error) {
	bin, err := btcdBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "btcd-test-")
	if err != nil {
		return nil, err
	}
	n := &btcdNode{dir: dir, params: &chaincfg.RegressionNetParams}
	if n.minerKey, err = btcec.NewPrivateKey(); err != nil {
		return nil, err
	}
	minerAddr, err := btcutil.NewAddressPubKeyHash(btcutil.Hash160(n.minerKey.PubKey().SerializeCompressed()), n.params)
	if err != nil {
		return nil, err
	}
	if n.minerScript, err = txscript.PayToAddrScript(minerAddr); err != nil {
		return nil, err
	}
	rpcPort, err := freePort()
	if err != nil {
		return nil, err
	}
	p2pPort, err := freePort()
	if err != nil {
		return nil, err
	}
	n.rpcHost = fmt.Sprintf("127.0.0.1:%d", rpcPort)
	n.p2pHost = fmt.Sprintf("127.0.0.1:%d", p2pPort)
	conf := filepath.Join(dir, "btcd.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		return nil, err
	}
	var logs bytes.Buffer
	n.cmd = exec.Command(bin, "--regtest", "--notls", "--txindex", "--rpcuser=test", "--rpcpass=test",
		"--rpclisten="+n.rpcHost, "--listen="+n.p2pHost, "--nodnsseed",
		"--configfile="+conf, "--datadir="+filepath.Join(dir, "data"), "--logdir="+filepath.Join(dir, "logs"),
		"--miningaddr="+minerAddr.EncodeAddress(), "--debuglevel=warn")
	// btcd still creates an empty ~/.btcd (its default home, from the
	// user database), whatever the flags say.
	dieWithParent(n.cmd) // a panicking test binary must not leave btcd running
	n.cmd.Stdout, n.cmd.Stderr = &logs, &logs
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	n.client, err = rpcclient.New(&rpcclient.ConnConfig{Host: n.rpcHost, User: "test", Pass: "test", HTTPPostMode: true, DisableTLS: true}, nil)
	if err != nil {
		n.stop()
		return nil, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := n.client.GetBlockCount(); err == nil {
			break
		} else if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("btcd did not answer: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// 150 blocks: the coinbases of the first 50 are mature (100 blocks).
	hashes, err := n.client.Generate(150)
	if err != nil {
		n.stop()
		return nil, fmt.Errorf("generate: %v", err)
	}
	for _, h := range hashes[:50] {
		blk, err := n.client.GetBlock(h)
		if err != nil {
			n.stop()
			return nil, err
		}
		cb := blk.Transactions[0]
		n.coins = append(n.coins, coin{op: wire.OutPoint{Hash: cb.TxHash(), Index: 0}, value: cb.TxOut[0].Value})
	}
	return n, nil
}

func (n *btcdNode) stop() {
	if n.client != nil {
		n.client.Shutdown()
	}
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Kill()
		n.cmd.Wait()
	}
	os.RemoveAll(n.dir)
}

func (n *btcdNode) tip(t testing.TB) int64 {
	t.Helper()
	h, err := n.client.GetBlockCount()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (n *btcdNode) mine(t testing.TB, blocks uint32) []*chainhash.Hash {
	t.Helper()
	hashes, err := n.client.Generate(blocks)
	if err != nil {
		t.Fatal(err)
	}
	return hashes
}

type payment struct {
	address string
	sat     int64
}

// pay spends one mature coinbase to the payments (change back to the
// miner), signals replace-by-fee, and sends it. It returns the signed tx.
func (n *btcdNode) pay(t testing.TB, feeSat int64, pays ...payment) *wire.MsgTx {
	t.Helper()
	if len(n.coins) == 0 {
		t.Fatal("test node out of mature coins")
	}
	c := n.coins[0]
	n.coins = n.coins[1:]
	tx := n.build(t, c, feeSat, pays...)
	n.send(t, tx)
	return tx
}

func (n *btcdNode) build(t testing.TB, c coin, feeSat int64, pays ...payment) *wire.MsgTx {
	t.Helper()
	tx := wire.NewMsgTx(wire.TxVersion)
	in := wire.NewTxIn(&c.op, nil, nil)
	in.Sequence = wire.MaxTxInSequenceNum - 2 // BIP-125: replaceable
	tx.AddTxIn(in)
	rest := c.value - feeSat
	for _, p := range pays {
		a, err := btcutil.DecodeAddress(p.address, n.params)
		if err != nil {
			t.Fatal(err)
		}
		script, err := txscript.PayToAddrScript(a)
		if err != nil {
			t.Fatal(err)
		}
		tx.AddTxOut(wire.NewTxOut(p.sat, script))
		rest -= p.sat
	}
	tx.AddTxOut(wire.NewTxOut(rest, n.minerScript))
	sig, err := txscript.SignatureScript(tx, 0, n.minerScript, txscript.SigHashAll, n.minerKey, true)
	if err != nil {
		t.Fatal(err)
	}
	tx.TxIn[0].SignatureScript = sig
	return tx
}

func (n *btcdNode) send(t testing.TB, tx *wire.MsgTx) {
	t.Helper()
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	param, _ := json.Marshal(hex.EncodeToString(buf.Bytes()))
	if _, err := n.client.RawRequest("sendrawtransaction", []json.RawMessage{param}); err != nil {
		t.Fatalf("sendrawtransaction: %v", err)
	}
}

// replace double-spends tx's input to the miner with a higher fee (RBF).
func (n *btcdNode) replace(t testing.TB, tx *wire.MsgTx) *wire.MsgTx {
	t.Helper()
	prev, err := n.client.GetRawTransaction(&tx.TxIn[0].PreviousOutPoint.Hash)
	if err != nil {
		t.Fatal(err)
	}
	c := coin{op: tx.TxIn[0].PreviousOutPoint, value: prev.MsgTx().TxOut[tx.TxIn[0].PreviousOutPoint.Index].Value}
	r := n.build(t, c, 100_000)
	n.send(t, r)
	return r
}

func testNodeParams() *chaincfg.Params { return &chaincfg.RegressionNetParams }

func itoa(i int) string { return fmt.Sprint(i) }
