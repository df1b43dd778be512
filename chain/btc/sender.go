package btc

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// Keys is the HD wallet a sender signs with; *hd.Wallet implements it.
type Keys interface {
	Address(chain domain.Chain, index int64) (string, error)
	PrivateKey(chain domain.Chain, index int64) (*btcec.PrivateKey, error)
}

// StreamReader reads the event log; eventstore.Store implements it. The
// sender reads an invoice's InvoiceCreated to learn the HD index of the
// address a deposit was paid to (the read models do not keep it).
type StreamReader interface {
	ReadStream(ctx context.Context, stream string, from int64, max int) ([]eventstore.RecordedEvent, error)
}

var (
	_ Keys         = (*hd.Wallet)(nil)
	_ StreamReader = (eventstore.Store)(nil)
)

// SenderConfig tunes the Bitcoin payout sender. The embedded Config gives
// the node's RPC connection and the network (its scan settings are unused).
type SenderConfig struct {
	Config
	// ConfTarget is the confirmation target in blocks asked of the node's
	// fee estimate (default 6).
	ConfTarget int64
	// FallbackFeeRate in sat/vB is used when the node cannot estimate
	// (regtest, a fresh node) (default 10). MinFeeRate and MaxFeeRate clamp
	// any rate (defaults 1 and 500 sat/vB).
	FallbackFeeRate, MinFeeRate, MaxFeeRate int64
	Now                                     func() time.Time
}

// SenderDeps are the sender's collaborators.
type SenderDeps struct {
	// DB is the read-model database: the watcher's chain_btc_deposits and
	// the sender's own tables (btc.Migrate creates both).
	DB       sqldb.DB
	Keys     Keys
	Invoices StreamReader
	// Change allocates the fresh address each payout's change goes to: an
	// index of the same HD branch as invoice addresses, taken from the log
	// (commands.IndexAllocator), so it never collides with an invoice's.
	Change commands.AddressSource
	Assets domain.Assets
	Log    *slog.Logger
	// Signer signs every payout; nil signs with Keys in this process
	// (custody.Local). A separate signer gets it through custody.Client.
	Signer custody.Signer
}

// senderNode is the part of the RPC client the sender uses.
type senderNode interface {
	GetTxOut(txHash *chainhash.Hash, index uint32, mempool bool) (*btcjson.GetTxOutResult, error)
	GetRawTransactionVerbose(txHash *chainhash.Hash) (*btcjson.TxRawResult, error)
	EstimateSmartFee(confTarget int64, mode *btcjson.EstimateSmartFeeMode) (*btcjson.EstimateSmartFeeResult, error)
	EstimateFee(numBlocks int64) (float64, error)
	RawRequest(method string, params []json.RawMessage) (json.RawMessage, error)
}

var _ senderNode = (*rpcclient.Client)(nil)

// Sender pays out BTC from the gateway's hot wallet; it implements
// chain.Sender.
//
// The hot wallet is every output paid to one of our HD addresses: the
// deposits the watcher made final (state final in chain_btc_deposits; a
// deposit a reorg can still undo is not spent) and the change of our own
// payouts. A payout spends deposits directly as its inputs, straight from
// the per-invoice addresses: that is the sweep, and Bitcoin needs no
// separate sweep step.
//
// Build picks inputs largest first, prices the transaction with the node's
// fee estimate (estimatesmartfee, then btcd's estimatefee, then
// FallbackFeeRate), pays Amount − fee to the recipient (output 0) and the
// rest to a fresh change address (output 1), and signs every input as
// P2WPKH (BIP-143). The inputs are locked in chain_btc_utxos in the same
// transaction that stores the signed payout, so two payouts never spend one
// output, across goroutines and processes; a Build repeated for the same
// payout (a crash before PayoutSigned) returns the stored transaction.
//
// Change worth less than the dust limit is not created: it goes to the
// miners, recorded as dust_sat in chain_btc_payouts and logged, because the
// payout's ledger fee is what it deducted from the recipient (the hot
// wallet absorbs the dust). Build first tries one more input to avoid it.
type Sender struct {
	cfg    SenderConfig
	deps   SenderDeps
	client *rpcclient.Client
	node   senderNode
	asset  domain.Asset
	log    *slog.Logger
	// finality is the depth at which the watcher makes a deposit final;
	// an unmatched deposit decided "sweep" joins the wallet at it.
	finality int

	mu      sync.Mutex // one Build or Broadcast bookkeeping at a time in this process
	indexes *chain.AddressIndexes
}

var _ chain.Sender = (*Sender)(nil)

// Limits and constants of coin selection (satoshis, virtual bytes).
const (
	// DustLimit is the smallest output Build creates (546 sat: standard for
	// every output type at the default dust relay fee).
	DustLimit = 546
	// maxInputs bounds one transaction (and so its size, about 68 vB each).
	maxInputs      = 500
	maxCandidates  = 2000
	maxLockRetries = 5
	// P2WPKH input: 41 bytes outside the witness + 108 weight units of
	// witness (a 72-byte signature at most, a 33-byte key): 68 vB rounded up.
	inputVBytes = 68
	// Version, locktime, the input and output counts, and the segwit
	// marker and flag: 10.5 vB, rounded up.
	overheadVBytes = 11
)

// Wallet UTXO states (chain_btc_utxos.state).
const (
	utxoAvailable = "available"
	utxoLocked    = "locked"
	utxoPending   = "pending"
	utxoMissing   = "missing"
	utxoVoid      = "void"
	utxoForeign   = "foreign"
)

// NewSender connects lazily to the node. Run Migrate on deps.DB first.
// Errors: a missing collaborator or RPC host, no native BTC asset.
func NewSender(cfg SenderConfig, deps SenderDeps) (*Sender, error) {
	if cfg.RPCHost == "" {
		return nil, errors.New("btc sender: no RPC host")
	}
	client, err := rpcclient.New(&rpcclient.ConnConfig{
		Host: cfg.RPCHost, User: cfg.RPCUser, Pass: cfg.RPCPass, CookiePath: cfg.RPCCookiePath,
		HTTPPostMode: true, DisableTLS: len(cfg.TLSCert) == 0, Certificates: cfg.TLSCert,
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("btc sender: rpc client: %w", err)
	}
	s, err := newSender(cfg, client, deps)
	if err != nil {
		client.Shutdown()
		return nil, err
	}
	s.client = client
	return s, nil
}

func newSender(cfg SenderConfig, n senderNode, deps SenderDeps) (*Sender, error) {
	switch {
	case cfg.Params == nil:
		return nil, errors.New("btc sender: no network parameters")
	case deps.DB.Read == nil || deps.DB.Write == nil:
		return nil, errors.New("btc sender: no database")
	case deps.Keys == nil || deps.Invoices == nil || deps.Change == nil:
		return nil, errors.New("btc sender: needs Keys, Invoices and Change")
	}
	if deps.Signer == nil {
		deps.Signer = custody.Local{Keys: deps.Keys}
	}
	if cfg.ConfTarget <= 0 {
		cfg.ConfTarget = 6
	}
	if cfg.FallbackFeeRate <= 0 {
		cfg.FallbackFeeRate = 10
	}
	if cfg.MinFeeRate <= 0 {
		cfg.MinFeeRate = 1
	}
	if cfg.MaxFeeRate <= 0 {
		cfg.MaxFeeRate = 500
	}
	if cfg.MaxFeeRate < cfg.MinFeeRate {
		return nil, fmt.Errorf("btc sender: max fee rate %d below min %d", cfg.MaxFeeRate, cfg.MinFeeRate)
	}
	if cfg.RPCTimeout <= 0 {
		cfg.RPCTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var asset domain.Asset
	for _, a := range deps.Assets.List() {
		if a.Chain == domain.ChainBitcoin && a.Native() {
			asset = a
		}
	}
	if asset.Code == "" || asset.Decimals != 8 {
		return nil, errors.New("btc sender: no native Bitcoin asset with 8 decimals configured")
	}
	finality, err := finalityDepth(cfg.Config, asset)
	if err != nil {
		return nil, err
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	return &Sender{cfg: cfg, deps: deps, node: n, asset: asset, finality: finality, log: log.With("chain", "bitcoin", "component", "sender"),
		indexes: chain.NewAddressIndexes(deps.Invoices)}, nil
}

// Close releases the RPC client.
func (s *Sender) Close() {
	if s.client != nil {
		s.client.Shutdown()
	}
}

// Chain implements chain.Sender.
func (s *Sender) Chain() domain.Chain { return domain.ChainBitcoin }

// rpc runs one call with the per-call timeout.
func rpc[T any](ctx context.Context, s *Sender, f func() (T, error)) (T, error) {
	return withTimeout(ctx, s.cfg.RPCTimeout, f)
}

// withTimeout runs f, giving up after timeout or when ctx ends; rpcclient
// takes no context, so an abandoned call finishes in the background.
func withTimeout[T any](ctx context.Context, timeout time.Duration, f func() (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

type utxo struct {
	op      wire.OutPoint
	address string
	index   int64
	sat     int64
}

func sats(v int64) domain.Amount { return domain.FromBaseUnits(big.NewInt(v), 8) }

func outpoints(tx *wire.MsgTx) []string {
	out := make([]string, len(tx.TxIn))
	for i, in := range tx.TxIn {
		out[i] = in.PreviousOutPoint.String()
	}
	return out
}

func decodeTx(raw string) (*wire.MsgTx, error) {
	b, err := hex.DecodeString(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: raw transaction is not hex", chain.ErrPermanent)
	}
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("%w: raw transaction: %v", chain.ErrPermanent, err)
	}
	return &tx, nil
}

// sync brings the wallet's outputs up to date: final deposits become
// available, reverted ones missing, unmatched deposits decided "sweep" and
// final join (takeInUnmatched), and change in a block available.
func (s *Sender) sync(ctx context.Context) error {
	db := s.deps.DB
	now := s.cfg.Now().UnixMilli()
	rows, err := db.Read.QueryContext(ctx, db.Q(`SELECT d.deposit_id, d.invoice_id, d.address, d.amount_sat FROM chain_btc_deposits d
		LEFT JOIN chain_btc_utxos u ON u.outpoint = d.deposit_id
		WHERE d.state = ? AND u.outpoint IS NULL ORDER BY d.deposit_id LIMIT ?`), stateFinal, maxCandidates)
	if err != nil {
		return fmt.Errorf("btc sender: new deposits: %w", err)
	}
	type dep struct {
		id, invoice, address string
		sat                  int64
	}
	var deps []dep
	for rows.Next() {
		var d dep
		if err := rows.Scan(&d.id, &d.invoice, &d.address, &d.sat); err != nil {
			rows.Close()
			return fmt.Errorf("btc sender: new deposits: %w", err)
		}
		deps = append(deps, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("btc sender: new deposits: %w", err)
	}
	for _, d := range deps {
		index, err := s.indexes.Of(ctx, d.invoice)
		if err != nil {
			return err
		}
		state := utxoAvailable
		if index < 0 {
			state = utxoForeign
		} else if addr, err := s.deps.Keys.Address(domain.ChainBitcoin, index); err != nil || addr != d.address {
			s.log.Error("bitcoin deposit address is not our HD address at its index; not spendable", "deposit", d.id, "index", index)
			state = utxoForeign
		}
		if _, err := db.Write.ExecContext(ctx, db.Q(`INSERT INTO chain_btc_utxos (outpoint, address, hd_index, amount_sat, source, state, updated_at)
			VALUES (?, ?, ?, ?, 'deposit', ?, ?) ON CONFLICT (outpoint) DO NOTHING`), d.id, d.address, index, d.sat, state, now); err != nil {
			return fmt.Errorf("btc sender: add deposit %s: %w", d.id, err)
		}
	}
	if _, err := db.Write.ExecContext(ctx, db.Q(`UPDATE chain_btc_utxos SET state = ?, updated_at = ? WHERE state = ?
		AND outpoint IN (SELECT deposit_id FROM chain_btc_deposits WHERE state = ?)`), utxoMissing, now, utxoAvailable, stateReverted); err != nil {
		return fmt.Errorf("btc sender: reverted deposits: %w", err)
	}
	if _, err := s.takeInUnmatched(ctx); err != nil {
		return err
	}
	pending, err := s.utxos(ctx, `state = ? ORDER BY outpoint LIMIT 200`, utxoPending)
	if err != nil {
		return err
	}
	for _, u := range pending {
		out, err := rpc(ctx, s, func() (*btcjson.GetTxOutResult, error) { return s.node.GetTxOut(&u.op.Hash, u.op.Index, false) })
		if err != nil {
			return fmt.Errorf("btc sender: gettxout %s: %w", u.op, err)
		}
		if out == nil || out.Confirmations < 1 {
			continue
		}
		if _, err := db.Write.ExecContext(ctx, db.Q(`UPDATE chain_btc_utxos SET state = ?, updated_at = ? WHERE outpoint = ? AND state = ?`),
			utxoAvailable, now, u.op.String(), utxoPending); err != nil {
			return fmt.Errorf("btc sender: change %s: %w", u.op, err)
		}
	}
	return nil
}

func (s *Sender) utxos(ctx context.Context, where string, args ...any) ([]utxo, error) {
	db := s.deps.DB
	rows, err := db.Read.QueryContext(ctx, db.Q(`SELECT outpoint, address, hd_index, amount_sat FROM chain_btc_utxos WHERE `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("btc sender: utxos: %w", err)
	}
	defer rows.Close()
	var out []utxo
	for rows.Next() {
		var u utxo
		var op string
		if err := rows.Scan(&op, &u.address, &u.index, &u.sat); err != nil {
			return nil, fmt.Errorf("btc sender: utxos: %w", err)
		}
		if u.op, err = parseOutpoint(op); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func parseOutpoint(s string) (wire.OutPoint, error) {
	h, v, ok := strings.Cut(s, ":")
	hash, err := chainhash.NewHashFromStr(h)
	if !ok || err != nil {
		return wire.OutPoint{}, fmt.Errorf("btc sender: bad outpoint %q", s)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return wire.OutPoint{}, fmt.Errorf("btc sender: bad outpoint %q", s)
	}
	return wire.OutPoint{Hash: *hash, Index: uint32(n)}, nil
}

// available lists spendable outputs, largest first.
func (s *Sender) available(ctx context.Context) ([]utxo, error) {
	return s.utxos(ctx, `state = ? ORDER BY amount_sat DESC, outpoint LIMIT ?`, utxoAvailable, maxCandidates)
}

// checkUnspent asks the node about each input; one it no longer has (spent
// elsewhere, reorged away) is marked missing and gone is true.
func (s *Sender) checkUnspent(ctx context.Context, ins []utxo) (gone bool, err error) {
	for _, u := range ins {
		out, err := rpc(ctx, s, func() (*btcjson.GetTxOutResult, error) { return s.node.GetTxOut(&u.op.Hash, u.op.Index, true) })
		if err != nil {
			return false, fmt.Errorf("btc sender: gettxout %s: %w", u.op, err)
		}
		if out != nil {
			continue
		}
		s.log.Error("bitcoin wallet output is gone from the node (spent elsewhere or reorged away)", "outpoint", u.op.String(), "sat", u.sat)
		if _, err := s.deps.DB.Write.ExecContext(ctx, s.deps.DB.Q(`UPDATE chain_btc_utxos SET state = ?, updated_at = ? WHERE outpoint = ? AND state = ?`),
			utxoMissing, s.cfg.Now().UnixMilli(), u.op.String(), utxoAvailable); err != nil {
			return false, fmt.Errorf("btc sender: %w", err)
		}
		gone = true
	}
	return gone, nil
}

// Broadcast implements chain.Sender: it sends exactly tx.Raw. A
// transaction the node already has (mempool or chain) is success.
// Errors: chain.ErrPermanent when the node refuses it and one of its
// inputs is gone (spent by another transaction, or never existed): then
// the payout's other inputs are released and its change voided. Anything
// else is temporary.
func (s *Sender) Broadcast(ctx context.Context, tx chain.Signed) error {
	msg, err := decodeTx(tx.Raw)
	if err != nil {
		return err
	}
	if msg.TxHash().String() != tx.TxID {
		return fmt.Errorf("%w: raw transaction is %s, not %s", chain.ErrPermanent, msg.TxHash(), tx.TxID)
	}
	param, _ := json.Marshal(tx.Raw)
	_, sendErr := rpc(ctx, s, func() (json.RawMessage, error) {
		return s.node.RawRequest("sendrawtransaction", []json.RawMessage{param})
	})
	if sendErr == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if known, err := s.known(ctx, msg); err != nil {
		return fmt.Errorf("btc sender: sendrawtransaction: %v; and looking it up: %w", sendErr, err)
	} else if known {
		return nil
	}
	var rpcErr *btcjson.RPCError
	if !errors.As(sendErr, &rpcErr) {
		return fmt.Errorf("btc sender: sendrawtransaction: %w", sendErr) // transport: temporary
	}
	var missing []string
	for _, in := range msg.TxIn {
		op := in.PreviousOutPoint
		out, err := rpc(ctx, s, func() (*btcjson.GetTxOutResult, error) { return s.node.GetTxOut(&op.Hash, op.Index, true) })
		if err != nil {
			return fmt.Errorf("btc sender: sendrawtransaction: %v; gettxout %s: %w", sendErr, op, err)
		}
		if out == nil {
			missing = append(missing, op.String())
		}
	}
	if len(missing) == 0 {
		return fmt.Errorf("btc sender: sendrawtransaction: %w", sendErr)
	}
	if err := s.release(ctx, tx.TxID, missing); err != nil {
		return err
	}
	return fmt.Errorf("%w: transaction %s can never confirm: inputs %s are spent or gone (%v)", chain.ErrPermanent, tx.TxID,
		strings.Join(missing, ", "), sendErr)
}

// known reports whether the node has tx in its mempool or chain.
func (s *Sender) known(ctx context.Context, tx *wire.MsgTx) (bool, error) {
	h := tx.TxHash()
	if _, err := rpc(ctx, s, func() (*btcjson.TxRawResult, error) { return s.node.GetRawTransactionVerbose(&h) }); err == nil {
		return true, nil
	}
	// Without a transaction index a mined transaction is found by its
	// outputs, as long as one is unspent.
	for i := range tx.TxOut {
		out, err := rpc(ctx, s, func() (*btcjson.GetTxOutResult, error) { return s.node.GetTxOut(&h, uint32(i), true) })
		if err != nil {
			return false, fmt.Errorf("gettxout %s:%d: %w", h, i, err)
		}
		if out != nil {
			return true, nil
		}
	}
	return false, nil
}

// release undoes a payout transaction that can never confirm: inputs still
// unspent become available again, the others missing, its change void.
func (s *Sender) release(ctx context.Context, txid string, missing []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	db := s.deps.DB
	var payoutID string
	err := db.Read.QueryRowContext(ctx, db.Q(`SELECT payout_id FROM chain_btc_payouts WHERE txid = ?`), txid).Scan(&payoutID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // not built here: nothing locked
	}
	if err != nil {
		return fmt.Errorf("btc sender: release %s: %w", txid, err)
	}
	now := s.cfg.Now().UnixMilli()
	dbtx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("btc sender: release %s: %w", txid, err)
	}
	defer dbtx.Rollback()
	stmts := []struct {
		q    string
		args []any
	}{
		{`UPDATE chain_btc_utxos SET state = ?, payout_id = '', updated_at = ? WHERE payout_id = ? AND state = ?`,
			[]any{utxoAvailable, now, payoutID, utxoLocked}},
		{`UPDATE chain_btc_utxos SET state = ?, updated_at = ? WHERE payout_id = ? AND source = 'change'`, []any{utxoVoid, now, payoutID}},
		{`UPDATE chain_btc_payouts SET state = 'failed' WHERE payout_id = ?`, []any{payoutID}},
	}
	for _, st := range stmts {
		if _, err := dbtx.ExecContext(ctx, db.Q(st.q), st.args...); err != nil {
			return fmt.Errorf("btc sender: release %s: %w", txid, err)
		}
	}
	for _, op := range missing {
		if _, err := dbtx.ExecContext(ctx, db.Q(`UPDATE chain_btc_utxos SET state = ?, updated_at = ? WHERE outpoint = ?`), utxoMissing, now, op); err != nil {
			return fmt.Errorf("btc sender: release %s: %w", txid, err)
		}
	}
	if err := dbtx.Commit(); err != nil {
		return fmt.Errorf("btc sender: release %s: %w", txid, err)
	}
	s.log.Error("bitcoin payout transaction can never confirm; inputs released", "payout_id", payoutID, "txid", txid, "missing", missing)
	return nil
}

// Confirmations implements chain.Sender: the transaction's depth, 0 in
// the mempool. Errors: a transaction the node does not know (temporary).
// Without a transaction index on the node (btcd --txindex, bitcoind
// -txindex) a mined payout is found by its unspent outputs only.
func (s *Sender) Confirmations(ctx context.Context, txid string) (int, error) {
	h, err := chainhash.NewHashFromStr(txid)
	if err != nil {
		return 0, fmt.Errorf("btc sender: txid %q: %w", txid, err)
	}
	if r, err := rpc(ctx, s, func() (*btcjson.TxRawResult, error) { return s.node.GetRawTransactionVerbose(h) }); err == nil {
		return int(r.Confirmations), nil
	}
	for i := uint32(0); i < 2; i++ {
		out, err := rpc(ctx, s, func() (*btcjson.GetTxOutResult, error) { return s.node.GetTxOut(h, i, true) })
		if err != nil {
			return 0, fmt.Errorf("btc sender: gettxout %s:%d: %w", txid, i, err)
		}
		if out != nil {
			return int(out.Confirmations), nil
		}
	}
	return 0, fmt.Errorf("btc sender: transaction %s is unknown to the node", txid)
}

// WalletBalance is the hot wallet's satoshis by output state (available,
// locked, pending, missing, void, foreign), for operators and tests.
func (s *Sender) WalletBalance(ctx context.Context) (map[string]int64, error) {
	db := s.deps.DB
	rows, err := db.Read.QueryContext(ctx, `SELECT state, COALESCE(SUM(amount_sat), 0) FROM chain_btc_utxos GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("btc sender: balance: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var st string
		var v int64
		if err := rows.Scan(&st, &v); err != nil {
			return nil, err
		}
		out[st] = v
	}
	return out, rows.Err()
}
