// Package tronfake is a FAKE TRON full node for tests and demos. It is not
// a node: no TVM, no consensus, no peers, no persistence. It is an HTTP
// server that speaks the request and response shapes of java-tron's HTTP
// API (the /wallet and /walletsolidity endpoints TronGrid serves) over an
// in-memory chain whose blocks are mined on request, so that chain/tron
// can be tested, and the quick start followed, without a TRON node.
//
// Sources of the shapes (JSON field names, {} for "not found", {"Error":…}
// for failures, broadcast codes, hex addresses with visible=false, log
// addresses as 20 bytes without 0x41):
//   - developers.tron.network/reference: getnowblock, getblockbynum,
//     gettransactioninfobyid ("address … without the prefix 0x41"),
//     gettransactioninfobyblocknum, getaccount, getaccountresource,
//     getchainparameters, createtransaction, triggersmartcontract,
//     triggerconstantcontract, broadcasthex, broadcasttransaction;
//     docs/broadcast-and-rpc-errors (SIGERROR, TAPOS_ERROR,
//     DUP_TRANSACTION_ERROR, TRANSACTION_EXPIRATION_ERROR, …).
//   - tronprotocol.github.io/documentation-en/api/http (broadcasthex takes
//     the hex of a whole protobuf Transaction; broadcasttransaction's
//     raw_data_hex is ignored by the node, which re-encodes raw_data).
//   - java-tron protocol/src/main/protos/core/Tron.proto and
//     core/contract/{balance,smart}_contract.proto for the encodings;
//     block ids are the 8-byte big-endian height followed by 24 bytes of
//     the header hash; ref_block_bytes are bytes 6..8 of the reference
//     block's height and ref_block_hash bytes 8..16 of its id.
//
// Transactions it serves are real TRON encodings (Transaction.raw with a
// TransferContract or TriggerSmartContract) signed by test keys; what is
// broadcast to it is checked byte for byte: the raw data must re-encode to
// the same bytes, the txID must be sha256 of them, and the signature must
// recover the owner's address. Its USDT contract is a model of TRC-20
// transfer/balanceOf (energy, Transfer logs, reverts), not a TVM.
//
// Besides the node's API it serves a few endpoints of its own under
// /fake/ (see fakehttp.go): pay an address from its funded test wallet,
// mine blocks, fund an address, read balances. No real node has them.
package tronfake

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain/tron"
)

// Model constants of the fake USDT contract: the energy of a transfer to
// an address that holds the token already, and to one that does not
// (a new storage slot), in the proportions of mainnet USDT.
const (
	EnergyExistingHolder = 14_650
	EnergyNewHolder      = 29_650
	// EnergyFeeSun is the default getEnergyFee (sun per energy).
	EnergyFeeSun = 210
	// ByteFeeSun is getTransactionFee: sun per byte of bandwidth burned.
	ByteFeeSun = 1000
	// GenesisMs is the genesis block's timestamp when Options.Now is nil.
	GenesisMs = 1_780_000_000_000
	// blockMs is the block interval of TRON.
	blockMs = 3000
)

// Options tune a fake node. The zero value is what tests want.
type Options struct {
	// Now, when set, stamps new blocks with the wall clock (at least 3 s
	// after their parent), for a demo; nil: genesis at GenesisMs and blocks
	// exactly 3 s apart, so tests are deterministic.
	Now func() time.Time
	// PayerSun and PayerTokenUnits fund the built-in test wallet that Pay
	// spends from (defaults 1,000,000 TRX and 1,000,000 USDT).
	PayerSun, PayerTokenUnits int64
	// Network names the chain: nodes of different networks have different
	// genesis blocks (as mainnet, Nile and Shasta do); "" is the default.
	Network string
}

// Node is the fake node. It implements http.Handler; all its methods are
// safe for concurrent use.
type Node struct {
	opts  Options
	payer *ecdsa.PrivateKey

	mu        sync.Mutex
	blocks    []*block // by height; 0 is genesis
	pool      []*tx
	trx       map[[20]byte]int64 // sun
	active    map[[20]byte]bool
	usdt      map[[20]byte]*big.Int
	token     []byte // the USDT contract, 21 bytes
	solidLag  int64  // the solidified block is head − solidLag
	freeNet   int64  // free daily bandwidth of every account
	energyFee int64  // sun per energy
	fork      int    // salt of block ids, so a fork gets new ids
	fail      int    // the next fail requests answer HTTP 503
	throttle  int    // the next throttle requests answer HTTP 429
	slow      int    // the next slow requests stall for stall
	stall     time.Duration
	failures  int
	verified  []string // txids of broadcasts whose signature checked out
	tamper    func(raw *tron.RawTx)
	blacklist map[[20]byte]bool // owners the token refuses to move funds of
}

type block struct {
	number int64
	id     string
	parent string
	ts     int64
	txs    []*tx
}

type tx struct {
	id      string
	raw     tron.RawTx
	rawHex  string
	rawB    []byte
	sig     []byte
	ret     string
	info    tron.TransactionInfo
	effects []effect
}

// effect is one balance change a mined transaction made (undone by a reorg).
type effect struct {
	acct  [20]byte
	sun   int64
	token *big.Int
}

// New starts a fake chain at its genesis block, with the test wallet
// funded. Serve it with net/http (httptest.NewServer(node) in a test).
func New(opts Options) *Node {
	if opts.PayerSun <= 0 {
		opts.PayerSun = 1_000_000_000_000
	}
	if opts.PayerTokenUnits <= 0 {
		opts.PayerTokenUnits = 1_000_000_000_000
	}
	f := &Node{opts: opts, trx: map[[20]byte]int64{}, active: map[[20]byte]bool{}, usdt: map[[20]byte]*big.Int{},
		energyFee: EnergyFeeSun, stall: 2 * time.Second}
	f.token = append([]byte{0x41}, crypto.Keccak256([]byte("fake USDT"))[12:]...)
	f.blocks = []*block{f.newBlock(nil, nil)}
	var err error
	if f.payer, err = crypto.GenerateKey(); err != nil {
		panic(fmt.Sprintf("tronfake: a test key: %v", err)) // crypto/rand failing is not an operating error
	}
	f.credit(acct(KeyAddress(f.payer)), opts.PayerSun, opts.PayerTokenUnits)
	return f
}

// Token is the fake USDT contract's address (base58): the value of
// PIC_TRON_USDT_CONTRACT. It is the same on every fake node.
func (f *Node) Token() string { return tron.EncodeAddress(f.token) }

// Payer is the address of the built-in test wallet that Pay spends from.
func (f *Node) Payer() string { return tron.EncodeAddress(KeyAddress(f.payer)) }

func acct(addr []byte) [20]byte {
	var a [20]byte
	copy(a[:], addr[len(addr)-20:])
	return a
}

// KeyAddress is the 21-byte TRON address of a key.
func KeyAddress(k *ecdsa.PrivateKey) []byte {
	return append([]byte{0x41}, crypto.PubkeyToAddress(k.PublicKey).Bytes()...)
}

// newBlock makes the block after parent holding txs; its id is the
// height followed by a hash of its content (and the fork salt).
func (f *Node) newBlock(parent *block, txs []*tx) *block {
	b := &block{ts: GenesisMs, txs: txs}
	if f.opts.Now != nil {
		b.ts = f.opts.Now().UnixMilli()
	}
	if parent != nil {
		b.number, b.parent, b.ts = parent.number+1, parent.id, parent.ts+blockMs
		if f.opts.Now != nil {
			b.ts = max(b.ts, f.opts.Now().UnixMilli())
		}
	} else {
		b.parent = strings.Repeat("0", 64)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d %s %d %d", b.number, b.parent, b.ts, f.fork)
	if parent == nil && f.opts.Network != "" {
		fmt.Fprintf(h, " %s", f.opts.Network)
	}
	for _, t := range txs {
		h.Write([]byte(t.id))
	}
	id := h.Sum(nil)
	binary.BigEndian.PutUint64(id[:8], uint64(b.number))
	b.id = hex.EncodeToString(id)
	return b
}

func (f *Node) head() *block { return f.blocks[len(f.blocks)-1] }

// Fund credits TRX (sun) and fake USDT (base units) to an address (base58
// or hex) out of thin air, activating it, as a genesis allocation would.
// Errors: a malformed address or a negative amount.
func (f *Node) Fund(address string, sun, tokenUnits int64) error {
	a, err := tron.DecodeAddress(address)
	if err != nil {
		return err
	}
	if sun < 0 || tokenUnits < 0 {
		return errors.New("tronfake: negative amount")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.credit(acct(a), sun, tokenUnits)
	return nil
}

func (f *Node) credit(a [20]byte, sun, tokenUnits int64) {
	f.trx[a] += sun
	f.active[a] = true
	if tokenUnits > 0 {
		f.usdt[a] = new(big.Int).Add(f.tokenBalance(a), big.NewInt(tokenUnits))
	}
}

func (f *Node) tokenBalance(a [20]byte) *big.Int {
	if b := f.usdt[a]; b != nil {
		return b
	}
	return new(big.Int)
}

// Balances returns an address's TRX (sun) and fake USDT (base units).
// Errors: a malformed address.
func (f *Node) Balances(address string) (sun int64, tokenUnits *big.Int, err error) {
	b, err := tron.DecodeAddress(address)
	if err != nil {
		return 0, nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a := acct(b)
	return f.trx[a], new(big.Int).Set(f.tokenBalance(a)), nil
}

// Activated reports whether an address is an account on the fake chain
// (it received TRX or was funded): receiving tokens does not activate.
func (f *Node) Activated(address string) bool {
	b, err := tron.DecodeAddress(address)
	if err != nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active[acct(b)]
}

// FailNext makes the next n requests fail with HTTP 503; StallNext makes
// the next n requests stall for the stall duration (SetStall) and then
// answer 504; Faults counts the requests so failed.
func (f *Node) FailNext(n int) { f.mu.Lock(); f.fail = n; f.mu.Unlock() }

// ThrottleNext makes the next n API requests answer HTTP 429, as TronGrid
// does past a key's rate.
func (f *Node) ThrottleNext(n int) { f.mu.Lock(); f.throttle = n; f.mu.Unlock() }
func (f *Node) StallNext(n int)    { f.mu.Lock(); f.slow = n; f.mu.Unlock() }
func (f *Node) Faults() int        { f.mu.Lock(); defer f.mu.Unlock(); return f.failures }

// SetStall sets how long a stalled request hangs (default 2 s).
func (f *Node) SetStall(d time.Duration) { f.mu.Lock(); f.stall = d; f.mu.Unlock() }

// SetSolidLag makes the solidified block lag n blocks behind the head
// (default 0: every block is solid at once).
func (f *Node) SetSolidLag(n int64) { f.mu.Lock(); f.solidLag = n; f.mu.Unlock() }

// SetFreeNet gives every account n bytes of free bandwidth (default 0:
// every byte burns ByteFeeSun).
func (f *Node) SetFreeNet(n int64) { f.mu.Lock(); f.freeNet = n; f.mu.Unlock() }

// SetTamper makes the create endpoints alter what they build (nil: honest).
func (f *Node) SetTamper(fn func(raw *tron.RawTx)) { f.mu.Lock(); f.tamper = fn; f.mu.Unlock() }

// Blacklist makes the token refuse transfers from address, as mainnet
// USDT's blacklist does (require, no reason string): the dry run answers
// java-tron's revert and a mined transfer reverts.
func (f *Node) Blacklist(address string) error {
	b, err := tron.DecodeAddress(address)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.blacklist == nil {
		f.blacklist = map[[20]byte]bool{}
	}
	f.blacklist[acct(b)] = true
	return nil
}

// refBlock fills a raw transaction's TaPoS fields from the head.
func (f *Node) refBlock(r *tron.RawTx) {
	h := f.head()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(h.number))
	id, _ := hex.DecodeString(h.id)
	r.RefBlockBytes, r.RefBlockHash = n[6:8], id[8:16]
	r.Timestamp = h.ts + 1000
	r.Expiration = h.ts + 60_000
}

// Sign signs raw as a wallet does: 65 bytes r‖s‖v over sha256(raw).
func Sign(key *ecdsa.PrivateKey, raw []byte) ([]byte, error) {
	id := sha256.Sum256(raw)
	return crypto.Sign(id[:], key)
}

// Pay sends units of asset ("TRX" in sun, "USDT" in base units) from the
// built-in test wallet to an address, as a customer's wallet would
// (built, signed, broadcast: it is in the pool until the next Mine).
// Errors: an unknown asset, a malformed address, the node's refusal.
func (f *Node) Pay(to, asset string, units int64) (string, error) {
	switch strings.ToUpper(asset) {
	case "TRX":
		return f.PayTRX(f.payer, to, units)
	case "USDT", "USDT.TRON":
		return f.PayUSDT(f.payer, to, units)
	}
	return "", fmt.Errorf("tronfake: asset %q: want TRX or USDT", asset)
}

// PayTRX sends sun from key's account to an address.
func (f *Node) PayTRX(key *ecdsa.PrivateKey, to string, sun int64) (string, error) {
	b, err := tron.DecodeAddress(to)
	if err != nil {
		return "", err
	}
	c := tron.TransferContract{Owner: KeyAddress(key), To: b, Amount: sun}
	return f.submit(key, tron.Contract{Type: tron.TransferContractType, TypeURL: "type.googleapis.com/protocol.TransferContract", Value: c.Marshal()}, 0)
}

// PayUSDT calls transfer(to, units) on the fake USDT contract from key's
// account (fee limit 100 TRX).
func (f *Node) PayUSDT(key *ecdsa.PrivateKey, to string, units int64) (string, error) {
	b, err := tron.DecodeAddress(to)
	if err != nil {
		return "", err
	}
	data := append(crypto.Keccak256([]byte("transfer(address,uint256)"))[:4], abiTransfer(b, big.NewInt(units))...)
	c := tron.TriggerSmartContract{Owner: KeyAddress(key), Contract: f.token, Data: data}
	return f.submit(key, tron.Contract{Type: tron.TriggerSmartContractType, TypeURL: "type.googleapis.com/protocol.TriggerSmartContract", Value: c.Marshal()},
		100_000_000)
}

func abiTransfer(to []byte, units *big.Int) []byte {
	p := make([]byte, 64)
	copy(p[12:32], to[len(to)-20:])
	units.FillBytes(p[32:])
	return p
}

func (f *Node) submit(key *ecdsa.PrivateKey, c tron.Contract, feeLimit int64) (string, error) {
	f.mu.Lock()
	r := tron.RawTx{Contracts: []tron.Contract{c}, FeeLimit: feeLimit}
	f.refBlock(&r)
	f.mu.Unlock()
	raw := r.Marshal()
	sig, err := Sign(key, raw)
	if err != nil {
		return "", err
	}
	res := f.Accept(tron.MarshalTransaction(raw, [][]byte{sig}))
	if !res.Result {
		return "", fmt.Errorf("tronfake: the node refused the payment: %s %s", res.Code, message(res.Message))
	}
	return res.TxID, nil
}

func message(m string) string {
	if b, err := hex.DecodeString(m); err == nil {
		return string(b)
	}
	return m
}

// Mine makes n blocks, the first with every pooled transaction that can
// still execute (the others are dropped), and returns the new height.
func (f *Node) Mine(n int) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := 0; i < n; i++ {
		txs := f.pool
		f.pool = nil
		var kept []*tx
		for _, t := range txs {
			if f.execute(t) {
				kept = append(kept, t)
			}
		}
		b := f.newBlock(f.head(), kept)
		for _, t := range kept {
			t.info.BlockNumber, t.info.BlockTimeStamp = b.number, b.ts
		}
		f.blocks = append(f.blocks, b)
	}
	return f.head().number
}

// Reorg drops the newest depth blocks (undoing their transactions); the
// transactions keep says are put back in the pool, the others are gone
// (double-spent). Then it mines depth+1 blocks: the new chain is longer.
func (f *Node) Reorg(depth int, keep func(txid string) bool) {
	f.mu.Lock()
	f.fork++
	for i := 0; i < depth && len(f.blocks) > 1; i++ {
		b := f.head()
		f.blocks = f.blocks[:len(f.blocks)-1]
		for j := len(b.txs) - 1; j >= 0; j-- {
			t := b.txs[j]
			for _, e := range t.effects {
				f.trx[e.acct] -= e.sun
				if e.token != nil {
					f.usdt[e.acct] = new(big.Int).Sub(f.tokenBalance(e.acct), e.token)
				}
			}
			t.effects, t.ret, t.info = nil, "", tron.TransactionInfo{}
			if keep != nil && keep(t.id) {
				f.pool = append([]*tx{t}, f.pool...)
			}
		}
	}
	f.mu.Unlock()
	f.Mine(depth + 1)
}

// Height is the head's number.
func (f *Node) Height() int64 { f.mu.Lock(); defer f.mu.Unlock(); return f.head().number }

// BlockOf is the height of the block holding txid, or -1.
func (f *Node) BlockOf(txid string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, b := f.find(txid); t != nil {
		return b.number
	}
	return -1
}

func (f *Node) find(txid string) (*tx, *block) {
	for _, b := range f.blocks {
		for _, t := range b.txs {
			if t.id == txid {
				return t, b
			}
		}
	}
	return nil, nil
}

// Receipt is a mined transaction's receipt: its result and the TRX it
// burned. ok is false while it is in no block.
func (f *Node) Receipt(txid string) (info tron.TransactionInfo, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, _ := f.find(txid); t != nil {
		return t.info, true
	}
	return tron.TransactionInfo{}, false
}

// bandwidth is what a transaction burns for its bytes (no free bandwidth
// in the fake unless SetFreeNet): ByteFeeSun per byte.
func (f *Node) bandwidth(t *tx) int64 {
	size := int64(len(tron.MarshalTransaction(t.rawB, [][]byte{t.sig}))) + 64
	if f.freeNet >= size {
		return 0
	}
	return size * ByteFeeSun
}

func (f *Node) move(t *tx, a [20]byte, sun int64, token *big.Int) {
	f.trx[a] += sun
	if token != nil {
		f.usdt[a] = new(big.Int).Add(f.tokenBalance(a), token)
	}
	t.effects = append(t.effects, effect{acct: a, sun: sun, token: token})
}

var transferSelector = crypto.Keccak256([]byte("transfer(address,uint256)"))[:4]

// execute applies a transaction; false drops it (invalid now).
func (f *Node) execute(t *tx) bool {
	c := t.raw.Contracts[0]
	bw := f.bandwidth(t)
	t.info = tron.TransactionInfo{ID: t.id}
	switch c.Type {
	case tron.TransferContractType:
		tc, _ := tron.UnmarshalTransfer(c.Value)
		from, to := acct(tc.Owner), acct(tc.To)
		fee := bw
		if !f.active[to] {
			fee = 1_100_000 // getCreateNewAccountFeeInSystemContract + getCreateAccountFee
		}
		if f.trx[from] < tc.Amount+fee {
			return false
		}
		f.move(t, from, -(tc.Amount + fee), nil)
		f.move(t, to, tc.Amount, nil)
		f.active[to] = true
		t.ret = "SUCCESS"
		t.info.Fee = fee
		t.info.Receipt = tron.Receipt{NetFee: bw, NetUsage: 0}
		return true
	case tron.TriggerSmartContractType:
		tc, _ := tron.UnmarshalTrigger(c.Value)
		from := acct(tc.Owner)
		if f.trx[from] < bw {
			return false
		}
		f.move(t, from, -bw, nil)
		t.info.Fee = bw
		t.info.Receipt.NetFee = bw
		t.info.ContractAddress = hex.EncodeToString(tc.Contract)
		if !bytes.Equal(tc.Contract, f.token) || len(tc.Data) != 68 || !bytes.Equal(tc.Data[:4], transferSelector) {
			t.ret, t.info.Result, t.info.Receipt.Result = "REVERT", "FAILED", "REVERT"
			return true
		}
		to := acct(tc.Data[4+12 : 4+32])
		amount := new(big.Int).SetBytes(tc.Data[36:68])
		energy := int64(EnergyNewHolder)
		if f.tokenBalance(to).Sign() > 0 {
			energy = EnergyExistingHolder
		}
		energyFee := energy * f.energyFee
		t.info.Receipt.EnergyUsageTotal = energy
		switch {
		case energyFee > t.raw.FeeLimit || f.trx[from] < energyFee:
			burn := min(t.raw.FeeLimit, f.trx[from])
			f.move(t, from, -burn, nil)
			t.info.Fee += burn
			t.info.Receipt.EnergyFee = burn
			t.ret, t.info.Result, t.info.Receipt.Result = "OUT_OF_ENERGY", "FAILED", "OUT_OF_ENERGY"
			return true
		case f.tokenBalance(from).Cmp(amount) < 0 || f.blacklist[from]:
			f.move(t, from, -energyFee, nil)
			t.info.Fee += energyFee
			t.info.Receipt.EnergyFee = energyFee
			t.ret, t.info.Result, t.info.Receipt.Result = "REVERT", "FAILED", "REVERT"
			t.info.ResMessage = hex.EncodeToString([]byte("REVERT opcode executed"))
			return true
		}
		f.move(t, from, -energyFee, new(big.Int).Neg(amount))
		f.move(t, to, 0, amount)
		t.info.Fee += energyFee
		t.info.Receipt.EnergyFee = energyFee
		t.ret, t.info.Receipt.Result = "SUCCESS", "SUCCESS"
		pad := func(a []byte) string { return strings.Repeat("0", 24) + hex.EncodeToString(a) }
		t.info.Log = []tron.Log{{Address: hex.EncodeToString(f.token[1:]),
			Topics: []string{tron.TransferTopic, pad(from[:]), pad(to[:])},
			Data:   hex.EncodeToString(abiTransfer(to[:], amount)[32:])}}
		return true
	}
	return false
}

// Accept checks a signed transaction byte for byte and pools it: the
// broadcast path, answered with java-tron's broadcast codes. The raw data
// must decode strictly and re-encode to the same bytes, the whole
// transaction too, and its one signature must recover the owner of its
// one contract over txID = sha256(raw data).
func (f *Node) Accept(signed []byte) tron.BroadcastResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	refuse := func(code, msg string) tron.BroadcastResult {
		return tron.BroadcastResult{Code: code, Message: hex.EncodeToString([]byte(msg))}
	}
	raw, sigs, err := tron.UnmarshalTransaction(signed)
	if err != nil {
		return refuse("OTHER_ERROR", err.Error())
	}
	r, err := tron.UnmarshalRawTx(raw)
	if err != nil || !bytes.Equal(r.Marshal(), raw) || len(r.Contracts) != 1 {
		return refuse("OTHER_ERROR", fmt.Sprintf("raw_data does not re-encode byte for byte: %v", err))
	}
	if !bytes.Equal(tron.MarshalTransaction(raw, sigs), signed) {
		return refuse("OTHER_ERROR", "transaction does not re-encode byte for byte")
	}
	txid := tron.TxID(raw)
	owner, err := contractOwner(r.Contracts[0])
	if err != nil {
		return refuse("CONTRACT_VALIDATE_ERROR", err.Error())
	}
	if len(sigs) != 1 || len(sigs[0]) != 65 {
		return refuse("SIGERROR", "want one 65-byte signature")
	}
	sig := append([]byte{}, sigs[0]...)
	if sig[64] >= 27 {
		sig[64] -= 27 // java-tron accepts 27/28 as well as 0/1
	}
	id, _ := hex.DecodeString(txid)
	pub, err := crypto.SigToPub(id, sig)
	if err != nil || !bytes.Equal(append([]byte{0x41}, crypto.PubkeyToAddress(*pub).Bytes()...), owner) {
		return refuse("SIGERROR", "validate signature error: the signer is not the owner")
	}
	for _, t := range f.pool {
		if t.id == txid {
			return refuse("DUP_TRANSACTION_ERROR", "dup transaction")
		}
	}
	if t, _ := f.find(txid); t != nil {
		return refuse("DUP_TRANSACTION_ERROR", "dup transaction")
	}
	if !f.tapos(r) {
		return refuse("TAPOS_ERROR", "Tapos check error")
	}
	if h := f.head(); r.Expiration <= h.ts || r.Expiration > h.ts+24*3600*1000 {
		return refuse("TRANSACTION_EXPIRATION_ERROR", "transaction expired")
	}
	t := &tx{id: txid, raw: r, rawHex: hex.EncodeToString(raw), rawB: raw, sig: sigs[0]}
	if bw := f.bandwidth(t); f.trx[acct(owner)] < bw {
		return refuse("BANDWITH_ERROR", "account resource insufficient error")
	}
	if r.Contracts[0].Type == tron.TransferContractType {
		tc, _ := tron.UnmarshalTransfer(r.Contracts[0].Value)
		if f.trx[acct(owner)] < tc.Amount {
			return refuse("CONTRACT_VALIDATE_ERROR", "Validate TransferContract error, balance is not sufficient.")
		}
	}
	f.pool = append(f.pool, t)
	f.verified = append(f.verified, txid)
	return tron.BroadcastResult{Result: true, Code: "SUCCESS", TxID: txid}
}

func contractOwner(c tron.Contract) ([]byte, error) {
	switch c.Type {
	case tron.TransferContractType:
		t, err := tron.UnmarshalTransfer(c.Value)
		return t.Owner, err
	case tron.TriggerSmartContractType:
		t, err := tron.UnmarshalTrigger(c.Value)
		return t.Owner, err
	}
	return nil, fmt.Errorf("contract type %d not supported by the fake", c.Type)
}

// tapos: the reference block is on the chain.
func (f *Node) tapos(r tron.RawTx) bool {
	for _, b := range f.blocks {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(b.number))
		id, _ := hex.DecodeString(b.id)
		if bytes.Equal(n[6:8], r.RefBlockBytes) && bytes.Equal(id[8:16], r.RefBlockHash) {
			return true
		}
	}
	return false
}

// Verified lists the txids of every broadcast whose bytes and signature
// checked out, in order.
func (f *Node) Verified() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.verified...)
}

// VerifiedTx reports whether a broadcast of txid checked out byte for byte.
func (f *Node) VerifiedTx(txid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range f.verified {
		if id == txid {
			return true
		}
	}
	return false
}

// SignedBytes returns the signed Transaction bytes the node accepted for
// txid (as broadcast), for a test to compare with what the sender signed.
func (f *Node) SignedBytes(txid string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.pool {
		if t.id == txid {
			return tron.MarshalTransaction(t.rawB, [][]byte{t.sig}), true
		}
	}
	if t, _ := f.find(txid); t != nil && t.sig != nil {
		return tron.MarshalTransaction(t.rawB, [][]byte{t.sig}), true
	}
	return nil, false
}

// ---- JSON, as java-tron prints it with visible=false ----

func txJSON(t *tx) tron.Transaction {
	out := tron.Transaction{TxID: t.id, RawDataHex: t.rawHex}
	if t.ret != "" {
		out.Ret = []tron.TxResult{{ContractRet: t.ret}}
	}
	if t.sig != nil {
		out.Signature = []string{hex.EncodeToString(t.sig)}
	}
	r := t.raw
	out.RawData = tron.RawData{RefBlockBytes: hex.EncodeToString(r.RefBlockBytes), RefBlockHash: hex.EncodeToString(r.RefBlockHash),
		Expiration: r.Expiration, FeeLimit: r.FeeLimit, Timestamp: r.Timestamp}
	for _, c := range r.Contracts {
		var cj tron.ContractJSON
		cj.Parameter.TypeURL = c.TypeURL
		switch c.Type {
		case tron.TransferContractType:
			v, _ := tron.UnmarshalTransfer(c.Value)
			cj.Type = "TransferContract"
			cj.Parameter.Value = tron.ContractValue{Amount: v.Amount, OwnerAddress: hex.EncodeToString(v.Owner), ToAddress: hex.EncodeToString(v.To)}
		case tron.TriggerSmartContractType:
			v, _ := tron.UnmarshalTrigger(c.Value)
			cj.Type = "TriggerSmartContract"
			cj.Parameter.Value = tron.ContractValue{OwnerAddress: hex.EncodeToString(v.Owner), ContractAddress: hex.EncodeToString(v.Contract),
				Data: hex.EncodeToString(v.Data), CallValue: v.CallValue}
		}
		out.RawData.Contract = append(out.RawData.Contract, cj)
	}
	return out
}

func blockJSON(b *block) map[string]any {
	raw := map[string]any{"txTrieRoot": strings.Repeat("0", 64), "witness_address": "41" + strings.Repeat("ab", 20),
		"parentHash": b.parent, "version": 30, "timestamp": b.ts}
	if b.number != 0 {
		raw["number"] = b.number // proto3 JSON omits zeros: genesis has no number
	}
	out := map[string]any{"blockID": b.id, "block_header": map[string]any{"raw_data": raw, "witness_signature": strings.Repeat("cd", 65)}}
	if len(b.txs) > 0 {
		var txs []tron.Transaction
		for _, t := range b.txs {
			txs = append(txs, txJSON(t))
		}
		out["transactions"] = txs
	}
	return out
}

// FullNodeHandler serves the node as java-tron's full-node HTTP port (8090)
// does: /wallet/* and the fake's /fake/*; /walletsolidity/* is not found
// there (java-tron serves it on its solidity port only). ServeHTTP serves
// both families on one address, as TronGrid does.
func (f *Node) FullNodeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/walletsolidity/") {
			http.NotFound(w, r)
			return
		}
		f.ServeHTTP(w, r)
	})
}

// SolidityHandler serves the node as java-tron's solidity HTTP port (8091)
// does: /walletsolidity/* only.
func (f *Node) SolidityHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/walletsolidity/") {
			http.NotFound(w, r)
			return
		}
		f.ServeHTTP(w, r)
	})
}

// ServeHTTP serves the node's API (and the fake's own /fake/ endpoints).
func (f *Node) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if strings.HasPrefix(req.URL.Path, "/fake/") {
		f.serveFake(w, req)
		return
	}
	f.mu.Lock()
	switch {
	case f.throttle > 0:
		f.throttle--
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"Error":"request rate exceeded the allowed_rps(15), and the query server is suspended for 5s"}`))
		return
	case f.fail > 0:
		f.fail--
		f.failures++
		f.mu.Unlock()
		http.Error(w, "503 Service Temporarily Unavailable", http.StatusServiceUnavailable)
		return
	case f.slow > 0:
		f.slow--
		f.failures++
		stall := f.stall
		f.mu.Unlock()
		select {
		case <-time.After(stall):
		case <-req.Context().Done():
		}
		http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
		return
	}
	f.mu.Unlock()
	if req.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var body map[string]json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<20)).Decode(&body); err != nil {
		nodeError(w, "class com.google.protobuf.InvalidProtocolBufferException : "+err.Error())
		return
	}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(body[k], &s)
		return s
	}
	num := func(k string) int64 {
		var n int64
		_ = json.Unmarshal(body[k], &n)
		return n
	}
	addr := func(k string) ([]byte, bool) {
		b, err := tron.DecodeAddress(str(k))
		if err != nil {
			nodeError(w, "class java.lang.IllegalArgumentException : invalid "+k)
			return nil, false
		}
		return b, true
	}
	switch req.URL.Path {
	case "/wallet/broadcasthex":
		signed, err := hex.DecodeString(str("transaction"))
		if err != nil {
			nodeError(w, "invalid hex")
			return
		}
		writeJSON(w, f.Accept(signed))
		return
	case "/wallet/broadcasttransaction":
		var t tron.Transaction
		b, _ := json.Marshal(body)
		if err := json.Unmarshal(b, &t); err != nil || len(t.Signature) != 1 {
			nodeError(w, "bad transaction")
			return
		}
		raw, err1 := hex.DecodeString(t.RawDataHex)
		sig, err2 := hex.DecodeString(t.Signature[0])
		if err1 != nil || err2 != nil {
			nodeError(w, "bad transaction")
			return
		}
		// The real node re-encodes raw_data; the fake takes raw_data_hex.
		writeJSON(w, f.Accept(tron.MarshalTransaction(raw, [][]byte{sig})))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch req.URL.Path {
	case "/wallet/getnowblock":
		writeJSON(w, blockJSON(f.head()))
	case "/walletsolidity/getnowblock":
		writeJSON(w, blockJSON(f.blocks[max(0, int64(len(f.blocks))-1-f.solidLag)]))
	case "/wallet/getblockbynum":
		n := num("num")
		if n < 0 || n >= int64(len(f.blocks)) {
			writeJSON(w, map[string]any{})
			return
		}
		writeJSON(w, blockJSON(f.blocks[n]))
	case "/wallet/getblockbylimitnext":
		start, end := num("startNum"), num("endNum")
		out := []map[string]any{}
		if start >= 0 && end > start && end-start <= tron.MaxBlockRange {
			for n := start; n < end && n < int64(len(f.blocks)); n++ {
				out = append(out, blockJSON(f.blocks[n]))
			}
		}
		if len(out) == 0 {
			writeJSON(w, map[string]any{}) // java-tron answers {} for an empty or refused range
			return
		}
		writeJSON(w, map[string]any{"block": out})
	case "/wallet/gettransactioninfobyblocknum":
		n := num("num")
		infos := []tron.TransactionInfo{}
		if n >= 0 && n < int64(len(f.blocks)) {
			for _, t := range f.blocks[n].txs {
				infos = append(infos, t.info)
			}
		}
		writeJSON(w, infos)
	case "/wallet/gettransactioninfobyid":
		if t, _ := f.find(str("value")); t != nil {
			writeJSON(w, t.info)
			return
		}
		writeJSON(w, map[string]any{})
	case "/wallet/getaccount":
		b, ok := addr("address")
		if !ok {
			return
		}
		a := acct(b)
		if !f.active[a] {
			writeJSON(w, map[string]any{})
			return
		}
		out := map[string]any{"address": "41" + hex.EncodeToString(a[:]), "create_time": GenesisMs}
		if f.trx[a] != 0 {
			out["balance"] = f.trx[a]
		}
		writeJSON(w, out)
	case "/wallet/getaccountresource":
		out := map[string]any{"TotalNetLimit": 43_200_000_000, "TotalEnergyLimit": 180_000_000_000}
		if f.freeNet > 0 {
			out["freeNetLimit"] = f.freeNet
		}
		writeJSON(w, out)
	case "/wallet/getchainparameters":
		writeJSON(w, map[string]any{"chainParameter": []map[string]any{
			{"key": "getMaintenanceTimeInterval", "value": 21_600_000},
			{"key": "getCreateAccountFee", "value": 100_000},
			{"key": "getTransactionFee", "value": ByteFeeSun},
			{"key": "getCreateNewAccountFeeInSystemContract", "value": 1_000_000},
			{"key": "getEnergyFee", "value": f.energyFee},
			{"key": "getMaxFeeLimit", "value": 15_000_000_000},
		}})
	case "/wallet/createtransaction":
		owner, ok := addr("owner_address")
		if !ok {
			return
		}
		to, ok := addr("to_address")
		if !ok {
			return
		}
		amount := num("amount")
		if f.trx[acct(owner)] < amount {
			nodeError(w, "class org.tron.core.exception.ContractValidateException : Validate TransferContract error, balance is not sufficient.")
			return
		}
		c := tron.TransferContract{Owner: owner, To: to, Amount: amount}
		writeJSON(w, f.unsigned(tron.Contract{Type: tron.TransferContractType, TypeURL: "type.googleapis.com/protocol.TransferContract", Value: c.Marshal()}, 0))
	case "/wallet/triggersmartcontract", "/wallet/triggerconstantcontract":
		owner, ok := addr("owner_address")
		if !ok {
			return
		}
		contract, ok := addr("contract_address")
		if !ok {
			return
		}
		param, err := hex.DecodeString(str("parameter"))
		if err != nil {
			nodeError(w, "invalid parameter")
			return
		}
		sel := crypto.Keccak256([]byte(str("function_selector")))[:4]
		data := append(sel, param...)
		c := tron.TriggerSmartContract{Owner: owner, Contract: contract, Data: data, CallValue: num("call_value")}
		t := f.unsigned(tron.Contract{Type: tron.TriggerSmartContractType, TypeURL: "type.googleapis.com/protocol.TriggerSmartContract", Value: c.Marshal()},
			num("fee_limit"))
		ext := map[string]any{"result": map[string]any{"result": true}, "transaction": t}
		if req.URL.Path == "/wallet/triggerconstantcontract" {
			ext["result"] = f.constant(str("function_selector"), owner, contract, data, ext)
		}
		writeJSON(w, ext)
	default:
		http.NotFound(w, req)
	}
}

// unsigned builds a transaction as the node's create endpoints do.
func (f *Node) unsigned(c tron.Contract, feeLimit int64) tron.Transaction {
	r := tron.RawTx{Contracts: []tron.Contract{c}, FeeLimit: feeLimit}
	f.refBlock(&r)
	if f.tamper != nil {
		f.tamper(&r)
	}
	raw := r.Marshal()
	return txJSON(&tx{id: tron.TxID(raw), raw: r, rawHex: hex.EncodeToString(raw), rawB: raw})
}

// constant models triggerconstantcontract on the fake USDT: balanceOf,
// and a dry run of transfer with its energy. A call that reverts answers
// as java-tron does (Wallet.triggerConstantContract): result.result true,
// result.message "REVERT opcode executed" in hex, transaction.ret[0].ret
// "FAILED", the revert data (empty for a bare require) in constant_result
// and the energy used up to the revert.
func (f *Node) constant(selector string, owner, contract, data []byte, ext map[string]any) map[string]any {
	if !bytes.Equal(contract, f.token) {
		return map[string]any{"code": "CONTRACT_VALIDATE_ERROR", "message": hex.EncodeToString([]byte("No contract or not a smart contract"))}
	}
	word := func(v *big.Int) string { return hex.EncodeToString(v.FillBytes(make([]byte, 32))) }
	revert := func() map[string]any {
		ext["energy_used"] = 3_000
		ext["constant_result"] = []string{""}
		if t, ok := ext["transaction"].(tron.Transaction); ok {
			t.Ret = []tron.TxResult{{Ret: "FAILED"}}
			ext["transaction"] = t
		}
		return map[string]any{"result": true, "message": hex.EncodeToString([]byte("REVERT opcode executed"))}
	}
	switch {
	case selector == "balanceOf(address)" && len(data) == 4+32:
		ext["energy_used"] = 535
		ext["constant_result"] = []string{word(f.tokenBalance(acct(data[4+12 : 4+32])))}
		return map[string]any{"result": true}
	case selector == "transfer(address,uint256)" && len(data) == 4+64:
		to, amount := acct(data[4+12:4+32]), new(big.Int).SetBytes(data[36:68])
		if f.tokenBalance(acct(owner)).Cmp(amount) < 0 || f.blacklist[acct(owner)] {
			return revert()
		}
		ext["energy_used"] = int64(EnergyNewHolder)
		if f.tokenBalance(to).Sign() > 0 {
			ext["energy_used"] = int64(EnergyExistingHolder)
		}
		ext["constant_result"] = []string{word(big.NewInt(1))}
		return map[string]any{"result": true}
	}
	return revert()
}

// nodeError answers as java-tron's Util.processError does: HTTP 200 with
// {"Error": "…"}.
func nodeError(w http.ResponseWriter, msg string) {
	writeJSON(w, map[string]string{"Error": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
