package btc

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// Blocks over the node's peer-to-peer port. getblock over RPC makes the
// node hex-encode the block into a JSON string and us decode both again:
// for a 3,000-transaction block that was 14–55 ms of the node's and our
// time on two cores, most of a block's scan. A peer asks for the block
// with getdata and receives it in the wire format the node keeps it in.
//
// The peer connection is not authenticated, so a block it returns is
// checked against what the RPC (authenticated) said: its header must hash
// to the block asked for, and its transactions to the header's merkle
// root. A block that fails, or a peer that does not answer, is fetched
// over RPC instead; the peer is tried again after peerRetry.
const (
	// peerTimeout bounds a handshake and one block's fetch.
	peerTimeout = 10 * time.Second
	// peerRetry is how long blocks go over RPC after the peer failed.
	peerRetry = time.Minute
	userAgent = "acceptcryptohere"
)

var errPeerDown = errors.New("btc p2p: peer not connected")

// p2pBlocks is a node whose blocks come from the peer, with RPC for the
// rest and for blocks the peer could not give.
type p2pBlocks struct {
	node
	peer *peer
}

func (p p2pBlocks) GetBlock(hash *chainhash.Hash) (*wire.MsgBlock, error) {
	blk, err := p.peer.block(hash)
	if err == nil {
		return blk, nil
	}
	if !errors.Is(err, errPeerDown) {
		p.peer.log.Warn("bitcoin block over p2p failed; fetching it over RPC", "block", hash.String(), "peer", p.peer.addr, "err", err)
	}
	return p.node.GetBlock(hash)
}

// peer is one connection to the node's P2P port, made on first use and
// again after it fails. A reader goroutine answers pings and hands blocks
// to the fetches waiting for them.
type peer struct {
	addr   string
	params *chaincfg.Params
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex // guards the fields below
	conn    net.Conn
	pver    uint32
	pending map[chainhash.Hash][]chan blockReply
	retryAt time.Time
	fetched int // blocks delivered over the peer, for tests

	wmu sync.Mutex // one message written at a time
}

type blockReply struct {
	blk *wire.MsgBlock
	err error
}

func newPeer(addr string, params *chaincfg.Params, log *slog.Logger) *peer {
	return &peer{addr: addr, params: params, log: log, now: time.Now, pending: map[chainhash.Hash][]chan blockReply{}}
}

// block fetches one block and checks it. errPeerDown: no connection now.
func (p *peer) block(hash *chainhash.Hash) (*wire.MsgBlock, error) {
	conn, pver, err := p.connect()
	if err != nil {
		return nil, err
	}
	reply := make(chan blockReply, 1)
	p.mu.Lock()
	if p.conn != conn { // dropped meanwhile
		p.mu.Unlock()
		return nil, errPeerDown
	}
	asked := len(p.pending[*hash]) > 0 // one getdata, one block, for every fetch of it
	p.pending[*hash] = append(p.pending[*hash], reply)
	p.mu.Unlock()

	if !asked {
		get := wire.NewMsgGetDataSizeHint(1)
		if err := get.AddInvVect(wire.NewInvVect(wire.InvTypeWitnessBlock, hash)); err != nil {
			return nil, err
		}
		if err := p.write(conn, pver, get); err != nil {
			p.drop(conn, err)
			return nil, err
		}
	}
	timer := time.NewTimer(peerTimeout)
	defer timer.Stop()
	select {
	case r := <-reply:
		if r.err != nil {
			return nil, r.err
		}
		if err := checkBlock(r.blk, hash); err != nil {
			p.drop(conn, err)
			return nil, err
		}
		p.mu.Lock()
		p.fetched++
		p.mu.Unlock()
		return r.blk, nil
	case <-timer.C:
		err := fmt.Errorf("btc p2p: no block %s in %s", hash, peerTimeout)
		p.drop(conn, err)
		return nil, err
	}
}

// connect returns the live connection, or dials and shakes hands unless
// the last attempt failed less than peerRetry ago.
func (p *peer) connect() (net.Conn, uint32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		return p.conn, p.pver, nil
	}
	if p.now().Before(p.retryAt) {
		return nil, 0, errPeerDown
	}
	conn, pver, err := p.handshake()
	if err != nil {
		p.retryAt = p.now().Add(peerRetry)
		p.log.Warn("bitcoin p2p connection failed; blocks go over RPC meanwhile", "peer", p.addr, "retry_in", peerRetry.String(), "err", err)
		return nil, 0, errPeerDown
	}
	p.conn, p.pver = conn, pver
	p.log.Info("bitcoin p2p connected: blocks come from the peer", "peer", p.addr, "protocol", pver)
	go p.read(conn, pver)
	return conn, pver, nil
}

// handshake dials the node and exchanges version and verack. It relays no
// transactions to us (we ask for blocks only) and offers no services, so
// the node neither syncs from us nor floods us with its mempool.
func (p *peer) handshake() (net.Conn, uint32, error) {
	conn, err := net.DialTimeout("tcp", p.addr, peerTimeout)
	if err != nil {
		return nil, 0, err
	}
	fail := func(err error) (net.Conn, uint32, error) {
		conn.Close()
		return nil, 0, fmt.Errorf("handshake: %w", err)
	}
	if err := conn.SetDeadline(time.Now().Add(peerTimeout)); err != nil {
		return fail(err)
	}
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return fail(err)
	}
	you := wire.NewNetAddressIPPort(net.IPv4zero, 0, 0)
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		you = wire.NewNetAddressIPPort(a.IP, uint16(a.Port), 0)
	}
	v := wire.NewMsgVersion(wire.NewNetAddressIPPort(net.IPv4zero, 0, 0), you, binary.LittleEndian.Uint64(nonce[:]), 0)
	v.DisableRelayTx = true
	if err := v.AddUserAgent(userAgent, "1"); err != nil {
		return fail(err)
	}
	if err := wire.WriteMessage(conn, v, wire.ProtocolVersion, p.params.Net); err != nil {
		return fail(err)
	}
	pver := wire.ProtocolVersion
	for gotVersion, gotAck := false, false; !gotVersion || !gotAck; {
		msg, _, err := wire.ReadMessage(conn, pver, p.params.Net)
		if errors.Is(err, wire.ErrUnknownMessage) {
			continue // e.g. Bitcoin Core's wtxidrelay, sendtxrcncl
		}
		if err != nil {
			return fail(err)
		}
		switch m := msg.(type) {
		case *wire.MsgVersion:
			gotVersion = true
			pver = min(pver, uint32(m.ProtocolVersion))
			if err := wire.WriteMessage(conn, wire.NewMsgVerAck(), pver, p.params.Net); err != nil {
				return fail(err)
			}
		case *wire.MsgVerAck:
			gotAck = true
		}
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return fail(err)
	}
	return conn, pver, nil
}

// read delivers blocks and answers pings until the connection fails.
func (p *peer) read(conn net.Conn, pver uint32) {
	for {
		_, msg, _, err := wire.ReadMessageWithEncodingN(conn, pver, p.params.Net, wire.WitnessEncoding)
		if errors.Is(err, wire.ErrUnknownMessage) {
			continue
		}
		if err != nil {
			p.drop(conn, err)
			return
		}
		switch m := msg.(type) {
		case *wire.MsgPing:
			if err := p.write(conn, pver, wire.NewMsgPong(m.Nonce)); err != nil {
				p.drop(conn, err)
				return
			}
		case *wire.MsgBlock:
			// Nodes announce blocks with inv; a block nobody asked for
			// (say, another block than the one asked for) ends the
			// connection rather than leaving the fetch to time out.
			if h := m.BlockHash(); !p.deliver(h, blockReply{blk: m}) {
				p.drop(conn, fmt.Errorf("btc p2p: block %s was not asked for", h))
				return
			}
		case *wire.MsgNotFound:
			for _, iv := range m.InvList {
				if iv.Type == wire.InvTypeWitnessBlock || iv.Type == wire.InvTypeBlock {
					p.deliver(iv.Hash, blockReply{err: fmt.Errorf("btc p2p: the node has no block %s", iv.Hash)})
				}
			}
		}
	}
}

// deliver hands r to the fetches of hash and tells whether there were any.
func (p *peer) deliver(hash chainhash.Hash, r blockReply) bool {
	p.mu.Lock()
	waiting := p.pending[hash]
	delete(p.pending, hash)
	p.mu.Unlock()
	for _, c := range waiting {
		c <- r
	}
	return len(waiting) > 0
}

func (p *peer) write(conn net.Conn, pver uint32, msg wire.Message) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := conn.SetWriteDeadline(time.Now().Add(peerTimeout)); err != nil {
		return err
	}
	return wire.WriteMessage(conn, msg, pver, p.params.Net)
}

// drop closes conn and fails the fetches waiting on it; the next fetch
// dials again (a peer that misbehaves only after its handshake, say one
// sending blocks that fail their checks, waits peerRetry).
func (p *peer) drop(conn net.Conn, err error) {
	p.mu.Lock()
	if p.conn == conn {
		p.conn = nil
		p.retryAt = p.now().Add(peerRetry)
		for h, waiting := range p.pending {
			for _, c := range waiting {
				c <- blockReply{err: fmt.Errorf("btc p2p: connection lost: %w", err)}
			}
			delete(p.pending, h)
		}
	}
	p.mu.Unlock()
	conn.Close()
}

// blocksFetched is how many blocks came over the peer (tests).
func (p *peer) blocksFetched() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fetched
}

// close ends the connection (the watcher's Close).
func (p *peer) close() {
	p.mu.Lock()
	conn := p.conn
	p.mu.Unlock()
	if conn != nil {
		p.drop(conn, errors.New("closed"))
	}
}

// checkBlock refuses a block that is not the one asked for: its header
// must hash to want and its transactions to the header's merkle root (the
// root commits to every transaction's inputs and outputs; witnesses are
// not read here). A list whose last transactions repeat, which hashes to
// the same root as the list without them, is refused too.
func checkBlock(blk *wire.MsgBlock, want *chainhash.Hash) error {
	if got := blk.BlockHash(); got != *want {
		return fmt.Errorf("btc p2p: got block %s, asked for %s", got, want)
	}
	if len(blk.Transactions) == 0 {
		return fmt.Errorf("btc p2p: block %s has no transactions", want)
	}
	root, mutated := merkleRoot(txids(blk.Transactions))
	if mutated {
		return fmt.Errorf("btc p2p: block %s repeats transactions", want)
	}
	if root != blk.Header.MerkleRoot {
		return fmt.Errorf("btc p2p: block %s: transactions hash to %s, header says %s", want, root, blk.Header.MerkleRoot)
	}
	return nil
}

// txids hashes the transactions, a big block's in two halves at once (a
// 3,000-transaction block takes about 2.4 ms in one).
func txids(txs []*wire.MsgTx) []chainhash.Hash {
	ids := make([]chainhash.Hash, len(txs))
	hash := func(from, to int) {
		for i := from; i < to; i++ {
			ids[i] = txs[i].TxHash()
		}
	}
	if len(txs) < 500 {
		hash(0, len(txs))
		return ids
	}
	half := len(txs) / 2
	done := make(chan struct{})
	go func() { hash(0, half); close(done) }()
	hash(half, len(txs))
	<-done
	return ids
}

// merkleRoot is Bitcoin's merkle root of txids (an odd level pairs its
// last hash with itself). mutated tells that some level held two equal
// hashes side by side, as a list with repeated transactions does (Bitcoin
// Core's check). It reuses ids.
func merkleRoot(ids []chainhash.Hash) (root chainhash.Hash, mutated bool) {
	var pair [2 * chainhash.HashSize]byte
	for n := len(ids); n > 1; n = (n + 1) / 2 {
		for i := 0; i < n; i += 2 {
			j := min(i+1, n-1)
			if j != i && ids[i] == ids[j] {
				mutated = true
			}
			copy(pair[:chainhash.HashSize], ids[i][:])
			copy(pair[chainhash.HashSize:], ids[j][:])
			ids[i/2] = chainhash.DoubleHashH(pair[:])
		}
	}
	return ids[0], mutated
}
