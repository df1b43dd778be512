package btc

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

func randomAddress(t *testing.T, n *btcdNode) string {
	t.Helper()
	var h [20]byte
	rand.Read(h[:])
	a, err := btcutil.NewAddressWitnessPubKeyHash(h[:], n.params)
	if err != nil {
		t.Fatal(err)
	}
	return a.EncodeAddress()
}

func serialized(t *testing.T, blk *wire.MsgBlock) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := blk.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBlocksOverP2P fetches blocks from the real btcd's P2P port and
// finds them byte for byte the blocks its RPC gives, the same hash asked
// for twice at once included.
func TestBlocksOverP2P(t *testing.T) {
	n := testNode(t)
	for i := 0; i < 3; i++ {
		n.pay(t, 1000, payment{address: randomAddress(t, n), sat: 50_000})
	}
	hashes := n.mine(t, 2)
	p := newPeer(n.p2pHost, n.params, testLog())
	t.Cleanup(p.close)
	rpc := hexBlocks{n.client}
	for _, h := range hashes {
		want, err := rpc.GetBlock(h)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		got := make([]*wire.MsgBlock, 2)
		errs := make([]error, 2)
		for k := range got {
			wg.Add(1)
			go func() { defer wg.Done(); got[k], errs[k] = p.block(h) }()
		}
		wg.Wait()
		for k := range got {
			if errs[k] != nil {
				t.Fatalf("block %s over p2p: %v", h, errs[k])
			}
			if !bytes.Equal(serialized(t, got[k]), serialized(t, want)) {
				t.Fatalf("block %s over p2p differs from the RPC's", h)
			}
		}
	}
	if len(hashes[0]) == 0 || p.blocksFetched() < 2*len(hashes) {
		t.Fatalf("%d blocks came over the peer, want %d", p.blocksFetched(), 2*len(hashes))
	}
	// A block the node does not have is an error, not a wait.
	if _, err := p.block(&chainhash.Hash{1}); err == nil {
		t.Fatal("an unknown block was given")
	}
}

// TestP2PFallsBackToRPC: with no peer listening, blocks come over RPC,
// and the peer is not dialled again on every block.
func TestP2PFallsBackToRPC(t *testing.T) {
	n := testNode(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	p := newPeer(closed, n.params, testLog())
	b := p2pBlocks{node: hexBlocks{n.client}, peer: p}
	h := n.mine(t, 1)[0]
	for i := 0; i < 2; i++ {
		blk, err := b.GetBlock(h)
		if err != nil {
			t.Fatal(err)
		}
		if blk.BlockHash() != *h {
			t.Fatalf("got block %s, want %s", blk.BlockHash(), h)
		}
	}
	if p.retryAt.IsZero() || p.blocksFetched() != 0 {
		t.Fatalf("retry at %v, %d blocks over the peer: the failed dial was not remembered", p.retryAt, p.blocksFetched())
	}
	if _, err := p.block(h); !errors.Is(err, errPeerDown) {
		t.Fatalf("a fetch before the retry time: %v, want errPeerDown", err)
	}
}

// TestP2PRefusesABlockThatIsNotTheOneAskedFor: a peer (a fake speaking the
// wire protocol: a real node cannot be made to lie) answers with the
// block's transactions altered, or with another block. Neither is taken:
// the RPC's block is, and the peer is dropped.
func TestP2PRefusesABlockThatIsNotTheOneAskedFor(t *testing.T) {
	n := testNode(t)
	n.pay(t, 1000, payment{address: randomAddress(t, n), sat: 70_000})
	hashes := n.mine(t, 2)
	rpc := hexBlocks{n.client}
	asked, err := rpc.GetBlock(hashes[1])
	if err != nil {
		t.Fatal(err)
	}
	other, err := rpc.GetBlock(hashes[0])
	if err != nil {
		t.Fatal(err)
	}
	altered := asked.Copy()
	altered.Transactions[len(altered.Transactions)-1].TxOut[0].Value += 1_000_000
	for name, answer := range map[string]*wire.MsgBlock{"altered": altered, "another block": other} {
		t.Run(name, func(t *testing.T) {
			addr := lyingPeer(t, n, answer)
			p := newPeer(addr, n.params, testLog())
			t.Cleanup(p.close)
			if _, err := p.block(hashes[1]); err == nil {
				t.Fatal("the peer's block was taken")
			}
			p.mu.Lock()
			dropped := p.conn == nil && !p.retryAt.IsZero()
			p.mu.Unlock()
			if !dropped {
				t.Fatal("the peer was kept after a bad block")
			}
			p.mu.Lock()
			p.retryAt = time.Time{}
			p.mu.Unlock()
			blk, err := p2pBlocks{node: rpc, peer: p}.GetBlock(hashes[1])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(serialized(t, blk), serialized(t, asked)) {
				t.Fatal("the block given is not the RPC's")
			}
		})
	}
}

// lyingPeer listens for one peer at a time, shakes hands and answers every
// getdata with answer.
func lyingPeer(t *testing.T, n *btcdNode, answer *wire.MsgBlock) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				pver := wire.ProtocolVersion
				for {
					msg, _, err := wire.ReadMessage(c, pver, n.params.Net)
					if err != nil {
						return
					}
					var out []wire.Message
					switch msg.(type) {
					case *wire.MsgVersion:
						me := wire.NewNetAddressIPPort(net.IPv4zero, 0, 0)
						out = []wire.Message{wire.NewMsgVersion(me, me, 7, 0), wire.NewMsgVerAck()}
					case *wire.MsgGetData:
						out = []wire.Message{answer}
					}
					for _, m := range out {
						if err := wire.WriteMessage(c, m, pver, n.params.Net); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// TestMerkleRoot checks the odd-level rule on a hand-built three-leaf tree.
func TestMerkleRoot(t *testing.T) {
	a, b, c := chainhash.Hash{1}, chainhash.Hash{2}, chainhash.Hash{3}
	pair := func(x, y chainhash.Hash) chainhash.Hash { return chainhash.DoubleHashH(append(x[:], y[:]...)) }
	want := pair(pair(a, b), pair(c, c))
	if got, mutated := merkleRoot([]chainhash.Hash{a, b, c}); got != want || mutated {
		t.Fatalf("root %s (mutated %v), want %s", got, mutated, want)
	}
	if got, _ := merkleRoot([]chainhash.Hash{a}); got != a {
		t.Fatalf("one leaf: root %s, want the leaf", got)
	}
	// [a b c c] has the root of [a b c]: the repeat is what gives it away.
	if got, mutated := merkleRoot([]chainhash.Hash{a, b, c, c}); got != want || !mutated {
		t.Fatalf("repeated last leaf: root %s, mutated %v; want the same root, mutated", got, mutated)
	}
}

// BenchmarkCheckBlock checks a 3,000-transaction block as a block from the
// peer is checked (every txid hashed, the merkle root rebuilt).
func BenchmarkCheckBlock(b *testing.B) {
	blk := wire.NewMsgBlock(&wire.BlockHeader{})
	for i := 0; i < 3000; i++ {
		tx := wire.NewMsgTx(wire.TxVersion)
		tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{byte(i), byte(i >> 8)}, Index: uint32(i)}, make([]byte, 107), nil))
		tx.AddTxOut(wire.NewTxOut(10_000, make([]byte, 22)))
		tx.AddTxOut(wire.NewTxOut(int64(i), make([]byte, 25)))
		if err := blk.AddTransaction(tx); err != nil {
			b.Fatal(err)
		}
	}
	ids := txids(blk.Transactions)
	blk.Header.MerkleRoot, _ = merkleRoot(ids)
	want := blk.BlockHash()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := checkBlock(blk, &want); err != nil {
			b.Fatal(err)
		}
	}
}
