package tron_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain/tron"
)

// fakeNode is a FAKE TRON full node for tests: an HTTP server that speaks
// the request and response shapes of java-tron's HTTP API (the /wallet and
// /walletsolidity endpoints TronGrid serves), over an in-memory chain.
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
type fakeNode struct {
	t   testing.TB
	srv *httptest.Server

	mu        sync.Mutex
	blocks    []*fakeBlock // by height; 0 is genesis
	pool      []*fakeTx
	trx       map[[20]byte]int64 // sun
	active    map[[20]byte]bool
	usdt      map[[20]byte]*big.Int
	token     []byte // the USDT contract, 21 bytes
	solidLag  int64  // the solidified block is head − solidLag
	freeNet   int64  // free daily bandwidth of every account
	energyFee int64  // sun per energy
	fork      int    // salt of block ids, so a fork gets new ids
	fail      int    // the next fail requests answer HTTP 503
	slow      int    // the next slow requests stall for stall
	stall     time.Duration
	failures  int
	verified  []string // txids of broadcasts whose signature checked out
	tamper    func(raw *tron.RawTx)
}

type fakeBlock struct {
	number int64
	id     string
	parent string
	ts     int64
	txs    []*fakeTx
}

type fakeTx struct {
	id      string
	raw     tron.RawTx
	rawHex  string
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

// Model constants of the fake USDT contract: the energy of a transfer to
// an address that holds the token already, and to one that does not
// (a new storage slot), in the proportions of mainnet USDT.
const (
	fakeEnergyExisting = 14_650
	fakeEnergyNew      = 29_650
	fakeGenesisMs      = 1_780_000_000_000
)

func newFakeNode(t testing.TB) *fakeNode {
	f := &fakeNode{t: t, trx: map[[20]byte]int64{}, active: map[[20]byte]bool{}, usdt: map[[20]byte]*big.Int{},
		energyFee: 210, stall: 2 * time.Second}
	f.token = append([]byte{0x41}, crypto.Keccak256([]byte("fake USDT"))[12:]...)
	f.blocks = []*fakeBlock{f.newBlock(nil, nil)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeNode) url() string          { return f.srv.URL }
func (f *fakeNode) tokenAddress() string { return tron.EncodeAddress(f.token) }

func acct(addr []byte) [20]byte {
	var a [20]byte
	copy(a[:], addr[len(addr)-20:])
	return a
}

func mustAddr(t testing.TB, s string) []byte {
	b, err := tron.DecodeAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keyAddress(k *ecdsa.PrivateKey) []byte {
	return append([]byte{0x41}, crypto.PubkeyToAddress(k.PublicKey).Bytes()...)
}

// newBlock makes the block after parent holding txs; its id is the
// height followed by a hash of its content (and the fork salt).
func (f *fakeNode) newBlock(parent *fakeBlock, txs []*fakeTx) *fakeBlock {
	b := &fakeBlock{ts: fakeGenesisMs, txs: txs}
	if parent != nil {
		b.number, b.parent, b.ts = parent.number+1, parent.id, parent.ts+3000
	} else {
		b.parent = strings.Repeat("0", 64)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d %s %d %d", b.number, b.parent, b.ts, f.fork)
	for _, tx := range txs {
		h.Write([]byte(tx.id))
	}
	id := h.Sum(nil)
	binary.BigEndian.PutUint64(id[:8], uint64(b.number))
	b.id = hex.EncodeToString(id)
	return b
}

func (f *fakeNode) head() *fakeBlock { return f.blocks[len(f.blocks)-1] }

// fund credits TRX (sun) and USDT (base units) at genesis.
func (f *fakeNode) fund(addr []byte, sun int64, usdt int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := acct(addr)
	f.trx[a] += sun
	f.active[a] = true
	if usdt > 0 {
		f.usdt[a] = new(big.Int).Add(f.tokenBalance(a), big.NewInt(usdt))
	}
}

func (f *fakeNode) tokenBalance(a [20]byte) *big.Int {
	if b := f.usdt[a]; b != nil {
		return b
	}
	return new(big.Int)
}

func (f *fakeNode) balances(addr string) (sun int64, usdt *big.Int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := acct(mustAddr(f.t, addr))
	return f.trx[a], new(big.Int).Set(f.tokenBalance(a))
}

// failNext makes the next n requests fail with HTTP 503; stallNext makes
// the next n requests stall past a client's timeout.
func (f *fakeNode) failNext(n int)  { f.mu.Lock(); f.fail = n; f.mu.Unlock() }
func (f *fakeNode) stallNext(n int) { f.mu.Lock(); f.slow = n; f.mu.Unlock() }
func (f *fakeNode) faults() int     { f.mu.Lock(); defer f.mu.Unlock(); return f.failures }

// refBlock fills a raw transaction's TaPoS fields from the head.
func (f *fakeNode) refBlock(r *tron.RawTx) {
	h := f.head()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(h.number))
	id, _ := hex.DecodeString(h.id)
	r.RefBlockBytes, r.RefBlockHash = n[6:8], id[8:16]
	r.Timestamp = h.ts + 1000
	r.Expiration = h.ts + 60_000
}

// sign signs raw with key as a wallet does: 65 bytes r‖s‖v over sha256(raw).
func sign(t testing.TB, key *ecdsa.PrivateKey, raw []byte) []byte {
	id := sha256.Sum256(raw)
	sig, err := crypto.Sign(id[:], key)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// payTRX sends sun from key's account to to, as a customer's wallet would
// (built, signed, broadcast); it returns the txid.
func (f *fakeNode) payTRX(key *ecdsa.PrivateKey, to string, sun int64) string {
	f.t.Helper()
	c := tron.TransferContract{Owner: keyAddress(key), To: mustAddr(f.t, to), Amount: sun}
	return f.submit(key, tron.Contract{Type: tron.TransferContractType, TypeURL: "type.googleapis.com/protocol.TransferContract", Value: c.Marshal()}, 0)
}

// payUSDT calls transfer(to, units) on the USDT contract from key's account.
func (f *fakeNode) payUSDT(key *ecdsa.PrivateKey, to string, units int64) string {
	f.t.Helper()
	data := append(crypto.Keccak256([]byte("transfer(address,uint256)"))[:4], abiTransfer(mustAddr(f.t, to), units)...)
	c := tron.TriggerSmartContract{Owner: keyAddress(key), Contract: f.token, Data: data}
	return f.submit(key, tron.Contract{Type: tron.TriggerSmartContractType, TypeURL: "type.googleapis.com/protocol.TriggerSmartContract", Value: c.Marshal()},
		100_000_000)
}

func abiTransfer(to []byte, units int64) []byte {
	p := make([]byte, 64)
	copy(p[12:32], to[1:])
	big.NewInt(units).FillBytes(p[32:])
	return p
}

func (f *fakeNode) submit(key *ecdsa.PrivateKey, c tron.Contract, feeLimit int64) string {
	f.t.Helper()
	f.mu.Lock()
	r := tron.RawTx{Contracts: []tron.Contract{c}, FeeLimit: feeLimit}
	f.refBlock(&r)
	f.mu.Unlock()
	raw := r.Marshal()
	res := f.accept(tron.MarshalTransaction(raw, [][]byte{sign(f.t, key, raw)}))
	if !res.Result {
		f.t.Fatalf("fake node refused a payment: %+v", res)
	}
	return res.TxID
}

// mine makes n blocks, the first with every pooled transaction.
func (f *fakeNode) mine(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := 0; i < n; i++ {
		txs := f.pool
		f.pool = nil
		var kept []*fakeTx
		for _, tx := range txs {
			if f.execute(tx) {
				kept = append(kept, tx)
			}
		}
		b := f.newBlock(f.head(), kept)
		for _, tx := range kept {
			tx.info.BlockNumber, tx.info.BlockTimeStamp = b.number, b.ts
		}
		f.blocks = append(f.blocks, b)
	}
}

// reorg drops the newest depth blocks (undoing their transactions); the
// transactions keep says are put back in the pool, the others are gone
// (double-spent). Then it mines depth+1 blocks: the new chain is longer.
func (f *fakeNode) reorg(depth int, keep func(txid string) bool) {
	f.mu.Lock()
	f.fork++
	for i := 0; i < depth; i++ {
		b := f.head()
		f.blocks = f.blocks[:len(f.blocks)-1]
		for j := len(b.txs) - 1; j >= 0; j-- {
			tx := b.txs[j]
			for _, e := range tx.effects {
				f.trx[e.acct] -= e.sun
				if e.token != nil {
					f.usdt[e.acct] = new(big.Int).Sub(f.tokenBalance(e.acct), e.token)
				}
			}
			tx.effects, tx.ret, tx.info = nil, "", tron.TransactionInfo{}
			if keep != nil && keep(tx.id) {
				f.pool = append([]*fakeTx{tx}, f.pool...)
			}
		}
	}
	f.mu.Unlock()
	f.mine(depth + 1)
}

// height is the head's number.
func (f *fakeNode) height() int64 { f.mu.Lock(); defer f.mu.Unlock(); return f.head().number }

// blockOf is the height of the block holding txid, or -1.
func (f *fakeNode) blockOf(txid string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.blocks {
		for _, tx := range b.txs {
			if tx.id == txid {
				return b.number
			}
		}
	}
	return -1
}

// bandwidth is what a transaction burns for its bytes (no free bandwidth
// in the fake unless freeNet is set): 1000 sun per byte.
func (f *fakeNode) bandwidth(tx *fakeTx) int64 {
	size := int64(len(tron.MarshalTransaction(mustHex(f.t, tx.rawHex), [][]byte{tx.sig}))) + 64
	if f.freeNet >= size {
		return 0
	}
	return size * 1000
}

func mustHex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fakeNode) move(tx *fakeTx, a [20]byte, sun int64, token *big.Int) {
	f.trx[a] += sun
	if token != nil {
		f.usdt[a] = new(big.Int).Add(f.tokenBalance(a), token)
	}
	tx.effects = append(tx.effects, effect{acct: a, sun: sun, token: token})
}

// execute applies a transaction; false drops it (invalid now).
func (f *fakeNode) execute(tx *fakeTx) bool {
	c := tx.raw.Contracts[0]
	bw := f.bandwidth(tx)
	tx.info = tron.TransactionInfo{ID: tx.id}
	switch c.Type {
	case tron.TransferContractType:
		t, _ := tron.UnmarshalTransfer(c.Value)
		from, to := acct(t.Owner), acct(t.To)
		fee := bw
		if !f.active[to] {
			fee = 1_100_000 // getCreateNewAccountFeeInSystemContract + getCreateAccountFee
		}
		if f.trx[from] < t.Amount+fee {
			return false
		}
		f.move(tx, from, -(t.Amount + fee), nil)
		f.move(tx, to, t.Amount, nil)
		f.active[to] = true
		tx.ret = "SUCCESS"
		tx.info.Fee = fee
		tx.info.Receipt = tron.Receipt{NetFee: bw, NetUsage: 0}
		return true
	case tron.TriggerSmartContractType:
		t, _ := tron.UnmarshalTrigger(c.Value)
		from := acct(t.Owner)
		if f.trx[from] < bw {
			return false
		}
		f.move(tx, from, -bw, nil)
		tx.info.Fee = bw
		tx.info.Receipt.NetFee = bw
		tx.info.ContractAddress = hex.EncodeToString(t.Contract)
		if !bytes.Equal(t.Contract, f.token) || len(t.Data) != 68 || !bytes.Equal(t.Data[:4], crypto.Keccak256([]byte("transfer(address,uint256)"))[:4]) {
			tx.ret, tx.info.Result, tx.info.Receipt.Result = "REVERT", "FAILED", "REVERT"
			return true
		}
		to := acct(t.Data[4+12 : 4+32])
		amount := new(big.Int).SetBytes(t.Data[36:68])
		energy := int64(fakeEnergyNew)
		if f.tokenBalance(to).Sign() > 0 {
			energy = fakeEnergyExisting
		}
		energyFee := energy * f.energyFee
		tx.info.Receipt.EnergyUsageTotal = energy
		switch {
		case energyFee > tx.raw.FeeLimit || f.trx[from] < energyFee:
			burn := min(tx.raw.FeeLimit, f.trx[from])
			f.move(tx, from, -burn, nil)
			tx.info.Fee += burn
			tx.info.Receipt.EnergyFee = burn
			tx.ret, tx.info.Result, tx.info.Receipt.Result = "OUT_OF_ENERGY", "FAILED", "OUT_OF_ENERGY"
			return true
		case f.tokenBalance(from).Cmp(amount) < 0:
			f.move(tx, from, -energyFee, nil)
			tx.info.Fee += energyFee
			tx.info.Receipt.EnergyFee = energyFee
			tx.ret, tx.info.Result, tx.info.Receipt.Result = "REVERT", "FAILED", "REVERT"
			tx.info.ResMessage = hex.EncodeToString([]byte("REVERT opcode executed"))
			return true
		}
		f.move(tx, from, -energyFee, new(big.Int).Neg(amount))
		f.move(tx, to, 0, amount)
		tx.info.Fee += energyFee
		tx.info.Receipt.EnergyFee = energyFee
		tx.ret, tx.info.Receipt.Result = "SUCCESS", "SUCCESS"
		pad := func(a []byte) string { return strings.Repeat("0", 24) + hex.EncodeToString(a) }
		tx.info.Log = []tron.Log{{Address: hex.EncodeToString(f.token[1:]),
			Topics: []string{tron.TransferTopic, pad(from[:]), pad(to[:])},
			Data:   hex.EncodeToString(abiTransfer(append([]byte{0x41}, to[:]...), amount.Int64())[32:])}}
		return true
	}
	return false
}

// accept checks a signed transaction byte for byte and pools it: the
// broadcast path. Codes as java-tron's broadcast answers them.
func (f *fakeNode) accept(signed []byte) tron.BroadcastResult {
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
	for _, tx := range f.pool {
		if tx.id == txid {
			return refuse("DUP_TRANSACTION_ERROR", "dup transaction")
		}
	}
	for _, b := range f.blocks {
		for _, tx := range b.txs {
			if tx.id == txid {
				return refuse("DUP_TRANSACTION_ERROR", "dup transaction")
			}
		}
	}
	if !f.tapos(r) {
		return refuse("TAPOS_ERROR", "Tapos check error")
	}
	if h := f.head(); r.Expiration <= h.ts || r.Expiration > h.ts+24*3600*1000 {
		return refuse("TRANSACTION_EXPIRATION_ERROR", "transaction expired")
	}
	tx := &fakeTx{id: txid, raw: r, rawHex: hex.EncodeToString(raw), sig: sigs[0]}
	if bw := f.bandwidth(tx); f.trx[acct(owner)] < bw {
		return refuse("BANDWITH_ERROR", "account resource insufficient error")
	}
	if r.Contracts[0].Type == tron.TransferContractType {
		t, _ := tron.UnmarshalTransfer(r.Contracts[0].Value)
		if f.trx[acct(owner)] < t.Amount {
			return refuse("CONTRACT_VALIDATE_ERROR", "Validate TransferContract error, balance is not sufficient.")
		}
	}
	f.pool = append(f.pool, tx)
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
func (f *fakeNode) tapos(r tron.RawTx) bool {
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

func (f *fakeNode) verifiedTx(txid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range f.verified {
		if id == txid {
			return true
		}
	}
	return false
}

// ---- JSON, as java-tron prints it with visible=false ----

func txJSON(t testing.TB, tx *fakeTx) tron.Transaction {
	out := tron.Transaction{TxID: tx.id, RawDataHex: tx.rawHex}
	if tx.ret != "" {
		out.Ret = []tron.TxResult{{ContractRet: tx.ret}}
	}
	if tx.sig != nil {
		out.Signature = []string{hex.EncodeToString(tx.sig)}
	}
	r := tx.raw
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

func blockJSON(t testing.TB, b *fakeBlock) map[string]any {
	raw := map[string]any{"txTrieRoot": strings.Repeat("0", 64), "witness_address": "41" + strings.Repeat("ab", 20),
		"parentHash": b.parent, "version": 30, "timestamp": b.ts}
	if b.number != 0 {
		raw["number"] = b.number // proto3 JSON omits zeros: genesis has no number
	}
	out := map[string]any{"blockID": b.id, "block_header": map[string]any{"raw_data": raw, "witness_signature": strings.Repeat("cd", 65)}}
	if len(b.txs) > 0 {
		var txs []tron.Transaction
		for _, tx := range b.txs {
			txs = append(txs, txJSON(t, tx))
		}
		out["transactions"] = txs
	}
	return out
}

func (f *fakeNode) serve(w http.ResponseWriter, req *http.Request) {
	f.mu.Lock()
	switch {
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
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
		writeJSON(w, map[string]string{"Error": "class com.google.protobuf.InvalidProtocolBufferException : " + err.Error()})
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
	if req.URL.Path == "/wallet/broadcasthex" {
		signed, err := hex.DecodeString(str("transaction"))
		if err != nil {
			writeJSON(w, map[string]string{"Error": "invalid hex"})
			return
		}
		writeJSON(w, f.accept(signed))
		return
	}
	if req.URL.Path == "/wallet/broadcasttransaction" {
		var tx tron.Transaction
		if err := json.Unmarshal(mustJSON(body), &tx); err != nil || len(tx.Signature) != 1 {
			writeJSON(w, map[string]string{"Error": "bad transaction"})
			return
		}
		// The real node re-encodes raw_data; the fake takes raw_data_hex.
		writeJSON(w, f.accept(tron.MarshalTransaction(mustHex(f.t, tx.RawDataHex), [][]byte{mustHex(f.t, tx.Signature[0])})))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch req.URL.Path {
	case "/wallet/getnowblock":
		writeJSON(w, blockJSON(f.t, f.head()))
	case "/walletsolidity/getnowblock":
		writeJSON(w, blockJSON(f.t, f.blocks[max(0, int64(len(f.blocks))-1-f.solidLag)]))
	case "/wallet/getblockbynum":
		n := num("num")
		if n < 0 || n >= int64(len(f.blocks)) {
			writeJSON(w, map[string]any{})
			return
		}
		writeJSON(w, blockJSON(f.t, f.blocks[n]))
	case "/wallet/gettransactioninfobyblocknum":
		n := num("num")
		infos := []tron.TransactionInfo{}
		if n >= 0 && n < int64(len(f.blocks)) {
			for _, tx := range f.blocks[n].txs {
				infos = append(infos, tx.info)
			}
		}
		writeJSON(w, infos)
	case "/wallet/gettransactioninfobyid":
		id := str("value")
		for _, b := range f.blocks {
			for _, tx := range b.txs {
				if tx.id == id {
					writeJSON(w, tx.info)
					return
				}
			}
		}
		writeJSON(w, map[string]any{})
	case "/wallet/getaccount":
		a := acct(mustAddr(f.t, str("address")))
		if !f.active[a] {
			writeJSON(w, map[string]any{})
			return
		}
		out := map[string]any{"address": "41" + hex.EncodeToString(a[:]), "create_time": fakeGenesisMs}
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
			{"key": "getTransactionFee", "value": 1000},
			{"key": "getCreateNewAccountFeeInSystemContract", "value": 1_000_000},
			{"key": "getEnergyFee", "value": f.energyFee},
			{"key": "getMaxFeeLimit", "value": 15_000_000_000},
		}})
	case "/wallet/createtransaction":
		owner, to, amount := mustAddr(f.t, str("owner_address")), mustAddr(f.t, str("to_address")), num("amount")
		if f.trx[acct(owner)] < amount {
			writeJSON(w, map[string]string{"Error": "class org.tron.core.exception.ContractValidateException : Validate TransferContract error, balance is not sufficient."})
			return
		}
		c := tron.TransferContract{Owner: owner, To: to, Amount: amount}
		writeJSON(w, f.unsigned(tron.Contract{Type: tron.TransferContractType, TypeURL: "type.googleapis.com/protocol.TransferContract", Value: c.Marshal()}, 0))
	case "/wallet/triggersmartcontract", "/wallet/triggerconstantcontract":
		owner, contract := mustAddr(f.t, str("owner_address")), mustAddr(f.t, str("contract_address"))
		sel := crypto.Keccak256([]byte(str("function_selector")))[:4]
		data := append(sel, mustHex(f.t, str("parameter"))...)
		c := tron.TriggerSmartContract{Owner: owner, Contract: contract, Data: data, CallValue: num("call_value")}
		tx := f.unsigned(tron.Contract{Type: tron.TriggerSmartContractType, TypeURL: "type.googleapis.com/protocol.TriggerSmartContract", Value: c.Marshal()},
			num("fee_limit"))
		ext := map[string]any{"result": map[string]any{"result": true}, "transaction": tx}
		if req.URL.Path == "/wallet/triggerconstantcontract" {
			delete(ext["result"].(map[string]any), "result")
			ext["result"] = f.constant(str("function_selector"), owner, contract, data, ext)
		}
		writeJSON(w, ext)
	default:
		http.NotFound(w, req)
	}
}

// unsigned builds a transaction as the node's create endpoints do.
func (f *fakeNode) unsigned(c tron.Contract, feeLimit int64) tron.Transaction {
	r := tron.RawTx{Contracts: []tron.Contract{c}, FeeLimit: feeLimit}
	f.refBlock(&r)
	if f.tamper != nil {
		f.tamper(&r)
	}
	raw := r.Marshal()
	return txJSON(f.t, &fakeTx{id: tron.TxID(raw), raw: r, rawHex: hex.EncodeToString(raw)})
}

// constant models triggerconstantcontract on the fake USDT: balanceOf,
// and a dry run of transfer with its energy.
func (f *fakeNode) constant(selector string, owner, contract, data []byte, ext map[string]any) map[string]any {
	if !bytes.Equal(contract, f.token) {
		return map[string]any{"code": "CONTRACT_VALIDATE_ERROR", "message": hex.EncodeToString([]byte("No contract or not a smart contract"))}
	}
	word := func(v *big.Int) string { return hex.EncodeToString(v.FillBytes(make([]byte, 32))) }
	switch selector {
	case "balanceOf(address)":
		ext["energy_used"] = 535
		ext["constant_result"] = []string{word(f.tokenBalance(acct(data[4+12 : 4+32])))}
		return map[string]any{"result": true}
	case "transfer(address,uint256)":
		to, amount := acct(data[4+12:4+32]), new(big.Int).SetBytes(data[36:68])
		if f.tokenBalance(acct(owner)).Cmp(amount) < 0 {
			ext["energy_used"] = 3_000
			return map[string]any{"code": "CONTRACT_EXE_ERROR", "message": hex.EncodeToString([]byte("REVERT opcode executed"))}
		}
		ext["energy_used"] = int64(fakeEnergyNew)
		if f.tokenBalance(to).Sign() > 0 {
			ext["energy_used"] = int64(fakeEnergyExisting)
		}
		ext["constant_result"] = []string{word(big.NewInt(1))}
		return map[string]any{"result": true}
	}
	return map[string]any{"code": "CONTRACT_EXE_ERROR", "message": hex.EncodeToString([]byte("REVERT opcode executed"))}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
