package eth

import (
	"context"
	"crypto/ecdsa"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// SenderClient is the part of go-ethereum's client the sender uses;
// *ethclient.Client and ethclient/simulated's client implement it.
type SenderClient interface {
	ChainID(ctx context.Context) (*big.Int, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	BalanceAt(ctx context.Context, account common.Address, blockNumber *big.Int) (*big.Int, error)
	NonceAt(ctx context.Context, account common.Address, blockNumber *big.Int) (uint64, error)
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
	CallContract(ctx context.Context, call ethereum.CallMsg, blockNumber *big.Int) ([]byte, error)
	EstimateGas(ctx context.Context, call ethereum.CallMsg) (uint64, error)
	SendTransaction(ctx context.Context, tx *types.Transaction) error
	TransactionByHash(ctx context.Context, hash common.Hash) (*types.Transaction, bool, error)
	TransactionReceipt(ctx context.Context, txHash common.Hash) (*types.Receipt, error)
}

var _ SenderClient = (*ethclient.Client)(nil)

// Keys is the HD wallet a sender signs with; *hd.Wallet implements it.
type Keys interface {
	Address(chain domain.Chain, index int64) (string, error)
	PrivateKey(chain domain.Chain, index int64) (*btcec.PrivateKey, error)
}

// StreamReader reads the event log (eventstore.Store): a sweep learns the
// HD index of a deposit address from its invoice's InvoiceCreated.
type StreamReader interface {
	ReadStream(ctx context.Context, stream string, from int64, max int) ([]eventstore.RecordedEvent, error)
}

var (
	_ Keys         = (*hd.Wallet)(nil)
	_ StreamReader = (eventstore.Store)(nil)
)

// DefaultHotWalletIndex is the HD index of the hot wallet on the Ethereum
// receive branch (m/44'/60'/0'/0/i): the last non-hardened index.
// Invoice addresses are allocated from 0 upwards, so they would need two
// billion invoices to reach it.
const DefaultHotWalletIndex = 1<<31 - 1

// SenderConfig tunes the Ethereum sender. The zero value is usable.
type SenderConfig struct {
	// HotWalletIndex is the HD index of the hot wallet (0: DefaultHotWalletIndex).
	HotWalletIndex int64
	// Contracts overrides token contract addresses by asset code, as in Config.
	Contracts map[string]string
	Now       func() time.Time
}

// SenderDeps are the sender's collaborators.
type SenderDeps struct {
	DB       sqldb.DB // read-model database; eth.Migrate creates the tables
	Keys     Keys
	Invoices StreamReader // needed by SweepDeposits only
	Assets   domain.Assets
	Log      *slog.Logger
}

// Sender pays out ETH and ERC-20 tokens from the gateway's hot wallet and
// sweeps deposit addresses into it; it implements chain.Sender.
//
// Transactions are EIP-1559 (fee cap = 2 × the latest base fee + the
// node's suggested tip). An ETH payout sends Amount − gas × fee cap: that
// is the network fee it records, the most the network can take; what the
// base fee leaves unspent stays in the hot wallet, and eth_txs shows both
// (max_fee_wei and, once mined, fee_paid_wei). A token payout calls
// transfer(to, Amount) and records a network fee of 0 in the token: its
// gas is paid in ETH by the hot wallet and booked in eth_txs (purpose
// payout, max_fee_wei and fee_paid_wei), because converting gas into the
// token at Build time would need a price, and a payout must not depend on
// one.
//
// Nonces: every transaction is stored in eth_txs under (from, nonce)
// before it is broadcast; the next nonce is the larger of the node's
// pending nonce and the highest stored one + 1, so a nonce is never used
// for two different transactions, and a Build repeated for a payout (a
// crash before PayoutSigned) returns the stored transaction. A built
// payout that is never broadcast leaves a nonce gap that holds later
// transactions back until it is sent; the processor always sends what it
// signed, so only an operator abandoning a signed payout can cause one.
type Sender struct {
	cfg    SenderConfig
	client SenderClient
	deps   SenderDeps
	log    *slog.Logger

	hotKey   *ecdsa.PrivateKey
	hot      common.Address
	native   *domain.Asset
	tokens   map[string]tokenAsset // by asset code
	chainID  *big.Int
	mu       sync.Mutex // one nonce allocation or sweep step at a time in this process
	indexes  *chain.AddressIndexes
	hotIndex int64
}

type tokenAsset struct {
	asset    domain.Asset
	contract common.Address
}

var _ chain.Sender = (*Sender)(nil)

// Gas limits.
const (
	transferGas = 21_000
	// tokenGasMarginPct is added to a token transfer's gas estimate:
	// storage costs may differ when the transaction runs.
	tokenGasMarginPct = 25
	maxNonceRetries   = 10
	maxSweepRows      = 500
)

// ErrReverted: a transaction was mined but failed (a token transfer that
// reverted): it moved nothing and never will, so the payout fails
// (chain.ErrPermanent). Confirmations returns it.
var ErrReverted = fmt.Errorf("%w: eth: transaction reverted", chain.ErrPermanent)

// ErrInsufficientGas: the hot wallet has too little ETH for the gas of a
// sweep (a payout returns chain.ErrPermanent instead).
var ErrInsufficientGas = errors.New("eth: insufficient hot-wallet ETH for gas")

// NewSender builds a sender for the Ethereum assets of deps.Assets. Run
// Migrate on deps.DB first. Errors: missing collaborators, a bad contract
// address, the hot wallet's key.
func NewSender(cfg SenderConfig, client SenderClient, deps SenderDeps) (*Sender, error) {
	if client == nil || deps.Keys == nil || deps.DB.Read == nil || deps.DB.Write == nil {
		return nil, errors.New("eth sender: needs a client, keys and a database")
	}
	if cfg.HotWalletIndex == 0 {
		cfg.HotWalletIndex = DefaultHotWalletIndex
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	s := &Sender{cfg: cfg, client: client, deps: deps, log: log.With("chain", "ethereum", "component", "sender"),
		tokens: map[string]tokenAsset{}, indexes: chain.NewAddressIndexes(deps.Invoices), hotIndex: cfg.HotWalletIndex}
	for _, a := range deps.Assets.List() {
		if a.Chain != domain.ChainEthereum {
			continue
		}
		contract := a.Contract
		if c, ok := cfg.Contracts[a.Code]; ok {
			contract = c
		}
		if contract == "" {
			a := a
			s.native = &a
			continue
		}
		if !common.IsHexAddress(contract) {
			return nil, fmt.Errorf("eth sender: %s: contract %q is not an address", a.Code, contract)
		}
		s.tokens[a.Code] = tokenAsset{asset: a, contract: common.HexToAddress(contract)}
	}
	key, addr, err := s.key(cfg.HotWalletIndex)
	if err != nil {
		return nil, fmt.Errorf("eth sender: hot wallet: %w", err)
	}
	s.hotKey, s.hot = key, addr
	return s, nil
}

// HotWallet is the address payouts are paid from and sweeps go to.
func (s *Sender) HotWallet() common.Address { return s.hot }

// Chain implements chain.Sender.
func (s *Sender) Chain() domain.Chain { return domain.ChainEthereum }

func (s *Sender) key(index int64) (*ecdsa.PrivateKey, common.Address, error) {
	k, err := s.deps.Keys.PrivateKey(domain.ChainEthereum, index)
	if err != nil {
		return nil, common.Address{}, err
	}
	key, err := crypto.ToECDSA(k.Serialize())
	if err != nil {
		return nil, common.Address{}, err
	}
	return key, crypto.PubkeyToAddress(key.PublicKey), nil
}

func (s *Sender) signer(ctx context.Context) (types.Signer, error) {
	if s.chainID == nil {
		id, err := s.client.ChainID(ctx)
		if err != nil {
			return nil, fmt.Errorf("eth sender: chain id: %w", err)
		}
		s.chainID = id
	}
	return types.LatestSignerForChainID(s.chainID), nil
}

// fees are the tip and fee cap of a new transaction.
func (s *Sender) fees(ctx context.Context) (tip, feeCap *big.Int, err error) {
	head, err := s.client.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("eth sender: head: %w", err)
	}
	if head.BaseFee == nil {
		return nil, nil, errors.New("eth sender: the chain has no base fee (pre-London): EIP-1559 transactions impossible")
	}
	if tip, err = s.client.SuggestGasTipCap(ctx); err != nil {
		return nil, nil, fmt.Errorf("eth sender: tip: %w", err)
	}
	feeCap = new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	return tip, feeCap, nil
}

// transferData ABI-encodes transfer(address,uint256).
func transferData(to common.Address, amount *big.Int) []byte {
	data := make([]byte, 0, 4+64)
	data = append(data, 0xa9, 0x05, 0x9c, 0xbb)
	data = append(data, common.LeftPadBytes(to.Bytes(), 32)...)
	return append(data, common.LeftPadBytes(amount.Bytes(), 32)...)
}

// tokenBalance calls balanceOf(owner) at block (nil: latest).
func (s *Sender) tokenBalance(ctx context.Context, contract, owner common.Address, block *big.Int) (*big.Int, error) {
	data := append([]byte{0x70, 0xa0, 0x82, 0x31}, common.LeftPadBytes(owner.Bytes(), 32)...)
	out, err := s.client.CallContract(ctx, ethereum.CallMsg{To: &contract, Data: data}, block)
	if err != nil {
		return nil, fmt.Errorf("eth sender: balanceOf %s: %w", owner.Hex(), err)
	}
	if len(out) != 32 {
		return nil, fmt.Errorf("eth sender: balanceOf %s: %d bytes returned", owner.Hex(), len(out))
	}
	return new(big.Int).SetBytes(out), nil
}

// spendable is what from can still spend at the latest block: its ETH and
// token balance less what its stored transactions not yet mined (nonce at
// or above the mined count) will take.
func (s *Sender) spendable(ctx context.Context, from common.Address, token *tokenAsset) (eth, tok *big.Int, err error) {
	head, err := s.client.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("eth sender: head: %w", err)
	}
	at := head.Number
	if eth, err = s.client.BalanceAt(ctx, from, at); err != nil {
		return nil, nil, fmt.Errorf("eth sender: balance: %w", err)
	}
	mined, err := s.client.NonceAt(ctx, from, at)
	if err != nil {
		return nil, nil, fmt.Errorf("eth sender: nonce: %w", err)
	}
	if token != nil {
		if tok, err = s.tokenBalance(ctx, token.contract, from, at); err != nil {
			return nil, nil, err
		}
	}
	db := s.deps.DB
	rows, err := db.Read.QueryContext(ctx, db.Q(`SELECT asset, value_units, max_fee_wei FROM eth_txs WHERE from_address = ? AND nonce >= ?`),
		from.Hex(), mined)
	if err != nil {
		return nil, nil, fmt.Errorf("eth sender: unmined transactions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var asset, value, maxFee string
		if err := rows.Scan(&asset, &value, &maxFee); err != nil {
			return nil, nil, err
		}
		v, _ := new(big.Int).SetString(value, 10)
		f, _ := new(big.Int).SetString(maxFee, 10)
		if v == nil || f == nil {
			return nil, nil, fmt.Errorf("eth sender: bad amounts in eth_txs: %q %q", value, maxFee)
		}
		eth.Sub(eth, f)
		switch {
		case s.native != nil && asset == s.native.Code:
			eth.Sub(eth, v)
		case token != nil && asset == token.asset.Code:
			tok.Sub(tok, v)
		}
	}
	return eth, tok, rows.Err()
}

// ethTx is a stored transaction.
type ethTx struct {
	from    common.Address
	nonce   uint64
	txid    string
	raw     string
	maxFee  *big.Int
	value   *big.Int
	purpose string
}

// signAndStore signs txdata from key at the next free nonce of from and
// stores it. The caller holds s.mu.
func (s *Sender) signAndStore(ctx context.Context, key *ecdsa.PrivateKey, tx types.DynamicFeeTx, purpose, ref, asset string,
	value *big.Int) (ethTx, error) {
	from := crypto.PubkeyToAddress(key.PublicKey)
	signer, err := s.signer(ctx)
	if err != nil {
		return ethTx{}, err
	}
	pending, err := s.client.PendingNonceAt(ctx, from)
	if err != nil {
		return ethTx{}, fmt.Errorf("eth sender: pending nonce: %w", err)
	}
	db := s.deps.DB
	var stored sql.NullInt64
	if err := db.Read.QueryRowContext(ctx, db.Q(`SELECT MAX(nonce) FROM eth_txs WHERE from_address = ?`), from.Hex()).Scan(&stored); err != nil {
		return ethTx{}, fmt.Errorf("eth sender: nonces: %w", err)
	}
	nonce := pending
	if stored.Valid && uint64(stored.Int64)+1 > nonce {
		nonce = uint64(stored.Int64) + 1
	}
	tx.ChainID = s.chainID
	maxFee := new(big.Int).Mul(new(big.Int).SetUint64(tx.Gas), tx.GasFeeCap)
	for attempt := 0; attempt < maxNonceRetries; attempt, nonce = attempt+1, nonce+1 {
		tx.Nonce = nonce
		signed, err := types.SignNewTx(key, signer, &tx)
		if err != nil {
			return ethTx{}, fmt.Errorf("eth sender: sign: %w", err)
		}
		raw, err := signed.MarshalBinary()
		if err != nil {
			return ethTx{}, err
		}
		row := ethTx{from: from, nonce: nonce, txid: signed.Hash().Hex(), raw: hex.EncodeToString(raw), maxFee: maxFee, value: value, purpose: purpose}
		_, err = db.Write.ExecContext(ctx, db.Q(`INSERT INTO eth_txs (from_address, nonce, txid, raw, purpose, ref, asset, value_units, max_fee_wei, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), from.Hex(), nonce, row.txid, row.raw, purpose, ref, asset, value.String(), maxFee.String(),
			s.cfg.Now().UnixMilli())
		if err == nil {
			return row, nil
		}
		var n int
		if qerr := db.Read.QueryRowContext(ctx, db.Q(`SELECT count(*) FROM eth_txs WHERE from_address = ? AND nonce = ?`), from.Hex(), nonce).
			Scan(&n); qerr != nil || n == 0 {
			return ethTx{}, fmt.Errorf("eth sender: store transaction: %w", err)
		}
		// Another process took this nonce first: take the next one.
	}
	return ethTx{}, errors.New("eth sender: nonces kept being taken by other processes; try again")
}

// storedPayout returns the transaction already built for a payout.
func (s *Sender) storedPayout(ctx context.Context, payoutID string) (ethTx, bool, error) {
	db := s.deps.DB
	var t ethTx
	var from, maxFee, value string
	var nonce int64
	err := db.Read.QueryRowContext(ctx, db.Q(`SELECT from_address, nonce, txid, raw, max_fee_wei, value_units FROM eth_txs
		WHERE purpose = 'payout' AND ref = ?`), payoutID).Scan(&from, &nonce, &t.txid, &t.raw, &maxFee, &value)
	if errors.Is(err, sql.ErrNoRows) {
		return ethTx{}, false, nil
	}
	if err != nil {
		return ethTx{}, false, fmt.Errorf("eth sender: payout %s: %w", payoutID, err)
	}
	t.from, t.nonce = common.HexToAddress(from), uint64(nonce)
	t.maxFee, _ = new(big.Int).SetString(maxFee, 10)
	t.value, _ = new(big.Int).SetString(value, 10)
	return t, true, nil
}

// Build implements chain.Sender. Errors: chain.ErrPermanent for an asset
// this sender does not pay, an invalid address or amount, an ETH fee not
// below the amount, a hot wallet short of the amount, and a hot wallet
// short of ETH for a token payout's gas; others are temporary.
func (s *Sender) Build(ctx context.Context, p chain.PayoutToSend) (chain.Signed, error) {
	return s.build(ctx, p, false)
}

// BuildFeeOnTop implements chain.FeeOnTopSender (refunds): the recipient
// gets exactly p.Amount; an ETH transfer's gas is paid on top of it (and
// is its NetworkFee), a token transfer's gas in ETH as always.
func (s *Sender) BuildFeeOnTop(ctx context.Context, p chain.PayoutToSend) (chain.Signed, error) {
	return s.build(ctx, p, true)
}

var _ chain.FeeOnTopSender = (*Sender)(nil)

func (s *Sender) build(ctx context.Context, p chain.PayoutToSend, feeOnTop bool) (chain.Signed, error) {
	var token *tokenAsset
	if t, ok := s.tokens[p.Asset.Code]; ok {
		token = &t
	} else if s.native == nil || p.Asset.Code != s.native.Code {
		return chain.Signed{}, fmt.Errorf("%w: eth sender cannot pay %s", chain.ErrPermanent, p.Asset.Code)
	}
	if err := hd.ValidateAddress(domain.ChainEthereum, p.ToAddress, nil); err != nil {
		return chain.Signed{}, fmt.Errorf("%w: %v", chain.ErrPermanent, err)
	}
	to := common.HexToAddress(p.ToAddress)
	units, err := p.Amount.BaseUnits(p.Asset.Decimals)
	if err != nil || units.Sign() <= 0 {
		return chain.Signed{}, fmt.Errorf("%w: amount %s", chain.ErrPermanent, p.Amount)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok, err := s.storedPayout(ctx, p.PayoutID); err != nil {
		return chain.Signed{}, err
	} else if ok {
		return s.signedOf(t, token == nil), nil
	}
	tip, feeCap, err := s.fees(ctx)
	if err != nil {
		return chain.Signed{}, err
	}
	haveETH, haveTok, err := s.spendable(ctx, s.hot, token)
	if err != nil {
		return chain.Signed{}, err
	}
	txdata := types.DynamicFeeTx{GasTipCap: tip, GasFeeCap: feeCap}
	var value *big.Int
	if token == nil {
		if haveETH.Cmp(units) < 0 {
			return chain.Signed{}, s.shortOf(ctx, p.Asset.Code, fmt.Sprintf("%s holds %s wei spendable, %s wei needed", s.hot.Hex(), haveETH, units))
		}
		// A contract recipient may need more than a plain transfer's gas.
		gas, err := s.client.EstimateGas(ctx, ethereum.CallMsg{From: s.hot, To: &to, Value: big.NewInt(1)})
		if err != nil {
			return chain.Signed{}, fmt.Errorf("eth sender: estimate gas: %w", err)
		}
		gas = max(gas, transferGas)
		fee := new(big.Int).Mul(new(big.Int).SetUint64(gas), feeCap)
		if feeOnTop {
			// A refund: exactly units to the recipient, the fee on top.
			if need := new(big.Int).Add(units, fee); haveETH.Cmp(need) < 0 {
				return chain.Signed{}, s.shortOf(ctx, p.Asset.Code, fmt.Sprintf("%s holds %s wei spendable, %s wei needed", s.hot.Hex(), haveETH, need))
			}
			value = units
		} else {
			if fee.Cmp(units) >= 0 {
				return chain.Signed{}, fmt.Errorf("%w: network fee %s wei (%d gas at %s wei) is not below the payout's %s wei",
					chain.ErrPermanent, fee, gas, feeCap, units)
			}
			value = new(big.Int).Sub(units, fee)
		}
		txdata.Gas, txdata.To, txdata.Value = gas, &to, value
	} else {
		if haveTok.Cmp(units) < 0 {
			return chain.Signed{}, s.shortOf(ctx, p.Asset.Code, fmt.Sprintf("%s holds %s %s base units spendable, %s needed", s.hot.Hex(), haveTok, p.Asset.Code, units))
		}
		data := transferData(to, units)
		gas, err := s.client.EstimateGas(ctx, ethereum.CallMsg{From: s.hot, To: &token.contract, Data: data})
		if err != nil {
			return chain.Signed{}, fmt.Errorf("eth sender: estimate gas of %s transfer: %w", p.Asset.Code, err)
		}
		gas += gas * tokenGasMarginPct / 100
		need := new(big.Int).Mul(new(big.Int).SetUint64(gas), feeCap)
		if haveETH.Cmp(need) < 0 {
			return chain.Signed{}, fmt.Errorf("%w: insufficient hot-wallet ETH for gas: %s holds %s wei spendable, the %s transfer needs up to %s wei",
				chain.ErrPermanent, s.hot.Hex(), haveETH, p.Asset.Code, need)
		}
		value = units
		txdata.Gas, txdata.To, txdata.Value, txdata.Data = gas, &token.contract, new(big.Int), data
	}
	t, err := s.signAndStore(ctx, s.hotKey, txdata, "payout", p.PayoutID, p.Asset.Code, value)
	if err != nil {
		return chain.Signed{}, err
	}
	s.log.Info("ethereum payout built", "payout_id", p.PayoutID, "asset", p.Asset.Code, "txid", t.txid, "nonce", t.nonce,
		"gas", txdata.Gas, "max_fee_wei", t.maxFee.String())
	return s.signedOf(t, token == nil), nil
}

// signedOf is the chain.Signed of a stored payout transaction.
func (s *Sender) signedOf(t ethTx, native bool) chain.Signed {
	nonce := t.nonce
	fee := domain.Amount{}
	if native {
		fee = domain.FromBaseUnits(t.maxFee, 18)
	}
	return chain.Signed{TxID: t.txid, Raw: t.raw, Nonce: &nonce, NetworkFee: fee}
}

func decodeTx(raw string) (*types.Transaction, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(raw, "0x"))
	if err != nil {
		return nil, fmt.Errorf("%w: raw transaction is not hex", chain.ErrPermanent)
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: raw transaction: %v", chain.ErrPermanent, err)
	}
	return &tx, nil
}

// Broadcast implements chain.Sender: it sends exactly tx.Raw, and a
// transaction the node already has (pool or chain: "already known", or
// "nonce too low" because it was mined) is success. Errors:
// chain.ErrPermanent when the sender's nonce was used by another mined
// transaction (this one can never confirm); anything else is temporary
// (among them "insufficient funds": the hot wallet may be refilled).
func (s *Sender) Broadcast(ctx context.Context, signed chain.Signed) error {
	tx, err := decodeTx(signed.Raw)
	if err != nil {
		return err
	}
	if tx.Hash().Hex() != signed.TxID {
		return fmt.Errorf("%w: raw transaction is %s, not %s", chain.ErrPermanent, tx.Hash().Hex(), signed.TxID)
	}
	return s.send(ctx, tx)
}

func (s *Sender) send(ctx context.Context, tx *types.Transaction) error {
	sendErr := s.client.SendTransaction(ctx, tx)
	if sendErr == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if found, _, err := s.client.TransactionByHash(ctx, tx.Hash()); err == nil && found != nil {
		return nil // already known, pending or mined
	}
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	if err != nil {
		return fmt.Errorf("%w: transaction %s: sender: %v", chain.ErrPermanent, tx.Hash().Hex(), err)
	}
	mined, err := s.client.NonceAt(ctx, from, nil)
	if err != nil {
		return fmt.Errorf("eth sender: send %s: %v; nonce: %w", tx.Hash().Hex(), sendErr, err)
	}
	if mined > tx.Nonce() {
		if r, err := s.client.TransactionReceipt(ctx, tx.Hash()); err == nil && r != nil {
			return nil // mined, though the node's index did not say so above
		}
		return fmt.Errorf("%w: nonce %d of %s was used by another transaction; %s can never confirm (%v)",
			chain.ErrPermanent, tx.Nonce(), from.Hex(), tx.Hash().Hex(), sendErr)
	}
	return fmt.Errorf("eth sender: send %s: %w", tx.Hash().Hex(), sendErr)
}

// Confirmations implements chain.Sender: the depth of the transaction's
// block, 0 while it is pending. Errors: an unknown transaction, and
// ErrReverted for a mined transaction that failed (it moved nothing; an
// operator must look: the payout stays sent).
func (s *Sender) Confirmations(ctx context.Context, txid string) (int, error) {
	h := common.HexToHash(txid)
	r, err := s.client.TransactionReceipt(ctx, h)
	if errors.Is(err, ethereum.NotFound) || (err == nil && r == nil) {
		if _, pending, err := s.client.TransactionByHash(ctx, h); err == nil && pending {
			return 0, nil
		}
		return 0, fmt.Errorf("eth sender: transaction %s is unknown to the node", txid)
	}
	if err != nil {
		return 0, fmt.Errorf("eth sender: receipt %s: %w", txid, err)
	}
	s.recordFeePaid(ctx, r)
	if r.Status != types.ReceiptStatusSuccessful {
		return 0, fmt.Errorf("%w: %s in block %d", ErrReverted, txid, r.BlockNumber)
	}
	head, err := s.client.HeaderByNumber(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("eth sender: head: %w", err)
	}
	return int(new(big.Int).Sub(head.Number, r.BlockNumber).Int64()) + 1, nil
}

// recordFeePaid books what a mined transaction of ours paid for gas.
func (s *Sender) recordFeePaid(ctx context.Context, r *types.Receipt) *big.Int {
	paid := new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), r.EffectiveGasPrice)
	if _, err := s.deps.DB.Write.ExecContext(ctx, s.deps.DB.Q(`UPDATE eth_txs SET fee_paid_wei = ? WHERE txid = ?`), paid.String(), r.TxHash.Hex()); err != nil {
		s.log.Warn("eth sender: recording a fee paid failed", "txid", r.TxHash.Hex(), "err", err)
	}
	return paid
}

// Sweep states (eth_sweeps.state).
const (
	SweepTopUp    = "topup"
	SweepTransfer = "transfer"
	SweepDone     = "done"
	SweepFailed   = "failed"
	SweepNothing  = "nothing" // nothing worth sweeping (not stored)
)

// SweepResult is where one deposit address's sweep of an asset is.
type SweepResult struct {
	SweepID string
	Asset   string
	Address string
	State   string
	// Amount is what is swept in the asset's base units; for ETH, what
	// reaches the hot wallet (the balance less the transfer's gas).
	Amount *big.Int
	// TopUpWei is the ETH the hot wallet sent the address for gas;
	// GasCostWei what the sweep cost the hot wallet in ETH (top-ups and
	// their fees, or for ETH the transfer's fee), set once done.
	TopUpWei, GasCostWei *big.Int
	TxIDs                []string
}

type sweepRow struct {
	id, asset, address, state, topups, transfer string
	index                                       int64
	round                                       int
	amount, topupWei                            *big.Int
}

// Sweep moves the balance of asset (an ETH or token code) on the deposit
// address at HD index into the hot wallet, as far as it can go without
// waiting for a block, and returns where it is; call it again after blocks
// to finish. A token sweep first tops up the address's gas from the hot
// wallet (topup), then sends the tokens (transfer); an ETH sweep sends the
// balance less the transfer's gas. Each transaction is stored in eth_txs
// before it is sent, and rebroadcast while it waits, so a restart resumes
// the sweep. The gas cost is recorded in eth_sweeps and logged.
// Errors: ErrInsufficientGas (hot wallet), node and database errors.
func (s *Sender) Sweep(ctx context.Context, asset string, index int64) (SweepResult, error) {
	var token *tokenAsset
	if t, ok := s.tokens[asset]; ok {
		token = &t
	} else if s.native == nil || asset != s.native.Code {
		return SweepResult{}, fmt.Errorf("eth sender: cannot sweep %s", asset)
	}
	if index == s.hotIndex {
		return SweepResult{}, errors.New("eth sender: the hot wallet does not sweep itself")
	}
	key, addr, err := s.key(index)
	if err != nil {
		return SweepResult{}, fmt.Errorf("eth sender: deposit key %d: %w", index, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	row, ok, err := s.openSweep(ctx, asset, addr)
	if err != nil {
		return SweepResult{}, err
	}
	for step := 0; step < 4; step++ {
		if !ok {
			row, ok, err = s.startSweep(ctx, asset, addr, index, token)
			if err != nil || !ok {
				return SweepResult{SweepID: row.id, Asset: asset, Address: addr.Hex(), State: SweepNothing}, err
			}
		}
		next, err := s.sweepStep(ctx, &row, key, token)
		if err != nil {
			return s.result(row, nil), err
		}
		if !next {
			break
		}
	}
	var cost *big.Int
	if row.state == SweepDone {
		cost, err = s.sweepCost(ctx, row, token == nil)
		if err != nil {
			return s.result(row, nil), err
		}
	}
	return s.result(row, cost), nil
}

func (s *Sender) result(r sweepRow, cost *big.Int) SweepResult {
	res := SweepResult{SweepID: r.id, Asset: r.asset, Address: r.address, State: r.state, Amount: r.amount, TopUpWei: r.topupWei, GasCostWei: cost}
	for _, t := range strings.Split(r.topups, ",") {
		if t != "" {
			res.TxIDs = append(res.TxIDs, t)
		}
	}
	if r.transfer != "" {
		res.TxIDs = append(res.TxIDs, r.transfer)
	}
	return res
}

const sweepColumns = `sweep_id, asset, address, hd_index, round, amount_units, state, topup_txids, transfer_txid, topup_wei`

// openSweep loads the address's sweep in progress (not done or failed).
func (s *Sender) openSweep(ctx context.Context, asset string, addr common.Address) (sweepRow, bool, error) {
	db := s.deps.DB
	var r sweepRow
	var amount, topup string
	err := db.Read.QueryRowContext(ctx, db.Q(`SELECT `+sweepColumns+` FROM eth_sweeps WHERE asset = ? AND address = ? AND state IN (?, ?)
		ORDER BY round DESC LIMIT 1`), asset, addr.Hex(), SweepTopUp, SweepTransfer).
		Scan(&r.id, &r.asset, &r.address, &r.index, &r.round, &amount, &r.state, &r.topups, &r.transfer, &topup)
	if errors.Is(err, sql.ErrNoRows) {
		return sweepRow{}, false, nil
	}
	if err != nil {
		return sweepRow{}, false, fmt.Errorf("eth sender: sweep of %s: %w", addr.Hex(), err)
	}
	r.amount, _ = new(big.Int).SetString(amount, 10)
	r.topupWei, _ = new(big.Int).SetString(topup, 10)
	return r, true, nil
}

// startSweep opens a new round when the address holds something worth
// sweeping. ok is false when it does not.
func (s *Sender) startSweep(ctx context.Context, asset string, addr common.Address, index int64, token *tokenAsset) (sweepRow, bool, error) {
	var bal *big.Int
	var err error
	if token != nil {
		bal, err = s.tokenBalance(ctx, token.contract, addr, nil)
		if err != nil {
			return sweepRow{}, false, err
		}
		if bal.Sign() == 0 {
			return sweepRow{}, false, nil
		}
	} else {
		if bal, err = s.client.BalanceAt(ctx, addr, nil); err != nil {
			return sweepRow{}, false, fmt.Errorf("eth sender: balance of %s: %w", addr.Hex(), err)
		}
		_, feeCap, err := s.fees(ctx)
		if err != nil {
			return sweepRow{}, false, err
		}
		// Worth it only when at least half the balance reaches the hot wallet.
		if bal.Cmp(new(big.Int).Mul(big.NewInt(2*transferGas), feeCap)) <= 0 {
			return sweepRow{}, false, nil
		}
	}
	db := s.deps.DB
	var round sql.NullInt64
	if err := db.Read.QueryRowContext(ctx, db.Q(`SELECT MAX(round) FROM eth_sweeps WHERE asset = ? AND address = ?`), asset, addr.Hex()).Scan(&round); err != nil {
		return sweepRow{}, false, fmt.Errorf("eth sender: sweeps: %w", err)
	}
	r := sweepRow{asset: asset, address: addr.Hex(), index: index, round: int(round.Int64) + 1, amount: bal, topupWei: new(big.Int), state: SweepTopUp}
	r.id = fmt.Sprintf("%s:%s:%d", asset, addr.Hex(), r.round)
	now := s.cfg.Now().UnixMilli()
	if _, err := db.Write.ExecContext(ctx, db.Q(`INSERT INTO eth_sweeps (`+sweepColumns+`, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, '', '', '0', ?, ?)`),
		r.id, asset, r.address, index, r.round, bal.String(), r.state, now, now); err != nil {
		return sweepRow{}, false, fmt.Errorf("eth sender: start sweep: %w", err)
	}
	return r, true, nil
}

func (s *Sender) saveSweep(ctx context.Context, r sweepRow, extra string, args ...any) error {
	db := s.deps.DB
	q := `UPDATE eth_sweeps SET state = ?, topup_txids = ?, transfer_txid = ?, topup_wei = ?, amount_units = ?, updated_at = ?` + extra + ` WHERE sweep_id = ?`
	all := append([]any{r.state, r.topups, r.transfer, r.topupWei.String(), r.amount.String(), s.cfg.Now().UnixMilli()}, args...)
	if _, err := db.Write.ExecContext(ctx, db.Q(q), append(all, r.id)...); err != nil {
		return fmt.Errorf("eth sender: sweep %s: %w", r.id, err)
	}
	return nil
}

// sweepStep advances a sweep by one transition; next says another step
// may follow at once.
func (s *Sender) sweepStep(ctx context.Context, r *sweepRow, key *ecdsa.PrivateKey, token *tokenAsset) (next bool, err error) {
	addr := common.HexToAddress(r.address)
	switch r.state {
	case SweepTopUp:
		if last := lastOf(r.topups); last != "" {
			mined, err := s.waitTx(ctx, last)
			if err != nil || !mined {
				return false, err
			}
		}
		tip, feeCap, err := s.fees(ctx)
		if err != nil {
			return false, err
		}
		txdata := types.DynamicFeeTx{GasTipCap: tip, GasFeeCap: feeCap, To: &s.hot}
		var value *big.Int
		if token != nil {
			data := transferData(s.hot, r.amount)
			gas, err := s.client.EstimateGas(ctx, ethereum.CallMsg{From: addr, To: &token.contract, Data: data})
			if err != nil {
				return false, fmt.Errorf("eth sender: estimate sweep gas: %w", err)
			}
			gas += gas * tokenGasMarginPct / 100
			need := new(big.Int).Mul(new(big.Int).SetUint64(gas), feeCap)
			have, _, err := s.spendable(ctx, addr, nil)
			if err != nil {
				return false, err
			}
			if have.Cmp(need) < 0 {
				return false, s.topUp(ctx, r, new(big.Int).Sub(need, have), tip, feeCap)
			}
			value = r.amount
			txdata.To, txdata.Gas, txdata.Value, txdata.Data = &token.contract, gas, new(big.Int), data
		} else {
			bal, _, err := s.spendable(ctx, addr, nil)
			if err != nil {
				return false, err
			}
			fee := new(big.Int).Mul(big.NewInt(transferGas), feeCap)
			value = new(big.Int).Sub(bal, fee)
			if value.Sign() <= 0 {
				r.state = SweepFailed
				return false, s.saveSweep(ctx, *r, "")
			}
			r.amount = value
			txdata.Gas, txdata.Value = transferGas, value
		}
		t, err := s.signAndStore(ctx, key, txdata, "sweep", r.id, r.asset, value)
		if err != nil {
			return false, err
		}
		r.state, r.transfer = SweepTransfer, t.txid
		if err := s.saveSweep(ctx, *r, ""); err != nil {
			return false, err
		}
		return true, nil
	case SweepTransfer:
		mined, err := s.waitTx(ctx, r.transfer)
		if err != nil || !mined {
			return false, err
		}
		rc, err := s.client.TransactionReceipt(ctx, common.HexToHash(r.transfer))
		if err != nil {
			return false, fmt.Errorf("eth sender: receipt %s: %w", r.transfer, err)
		}
		if rc.Status != types.ReceiptStatusSuccessful {
			r.state = SweepFailed
			s.log.Error("eth: sweep transfer reverted", "sweep_id", r.id, "txid", r.transfer)
			return false, s.saveSweep(ctx, *r, "")
		}
		r.state = SweepDone
		cost, err := s.sweepCost(ctx, *r, token == nil)
		if err != nil {
			return false, err
		}
		if err := s.saveSweep(ctx, *r, `, gas_cost_wei = ?`, cost.String()); err != nil {
			return false, err
		}
		s.log.Info("eth: sweep done", "sweep_id", r.id, "asset", r.asset, "amount_units", r.amount.String(), "topup_wei", r.topupWei.String(),
			"gas_cost_wei", cost.String(), "txid", r.transfer)
		return false, nil
	}
	return false, nil
}

// topUp sends the deposit address the ETH its transfer's gas needs.
func (s *Sender) topUp(ctx context.Context, r *sweepRow, amount, tip, feeCap *big.Int) error {
	have, _, err := s.spendable(ctx, s.hot, nil)
	if err != nil {
		return err
	}
	to := common.HexToAddress(r.address)
	need := new(big.Int).Add(amount, new(big.Int).Mul(big.NewInt(transferGas), feeCap))
	if have.Cmp(need) < 0 {
		return fmt.Errorf("%w: %s holds %s wei spendable; topping up %s for its %s sweep needs %s wei",
			ErrInsufficientGas, s.hot.Hex(), have, r.address, r.asset, need)
	}
	t, err := s.signAndStore(ctx, s.hotKey, types.DynamicFeeTx{GasTipCap: tip, GasFeeCap: feeCap, Gas: transferGas, To: &to, Value: amount},
		"topup", r.id, s.nativeCode(), amount)
	if err != nil {
		return err
	}
	if r.topups != "" {
		r.topups += ","
	}
	r.topups += t.txid
	r.topupWei = new(big.Int).Add(r.topupWei, amount)
	if err := s.saveSweep(ctx, *r, ""); err != nil {
		return err
	}
	s.log.Info("eth: sweep gas top-up", "sweep_id", r.id, "topup_wei", amount.String(), "txid", t.txid)
	_, err = s.waitTx(ctx, t.txid)
	return err
}

func (s *Sender) nativeCode() string {
	if s.native != nil {
		return s.native.Code
	}
	return "ETH"
}

func lastOf(list string) string {
	if i := strings.LastIndexByte(list, ','); i >= 0 {
		return list[i+1:]
	}
	return list
}

// waitTx (re)broadcasts a stored transaction and reports whether it is mined.
func (s *Sender) waitTx(ctx context.Context, txid string) (mined bool, err error) {
	r, err := s.client.TransactionReceipt(ctx, common.HexToHash(txid))
	if err == nil && r != nil {
		s.recordFeePaid(ctx, r)
		return true, nil
	}
	if err != nil && !errors.Is(err, ethereum.NotFound) {
		return false, fmt.Errorf("eth sender: receipt %s: %w", txid, err)
	}
	var raw string
	if err := s.deps.DB.Read.QueryRowContext(ctx, s.deps.DB.Q(`SELECT raw FROM eth_txs WHERE txid = ?`), txid).Scan(&raw); err != nil {
		return false, fmt.Errorf("eth sender: stored transaction %s: %w", txid, err)
	}
	tx, err := decodeTx(raw)
	if err != nil {
		return false, err
	}
	return false, s.send(ctx, tx)
}

// sweepCost is what a finished sweep cost the hot wallet in ETH.
func (s *Sender) sweepCost(ctx context.Context, r sweepRow, native bool) (*big.Int, error) {
	db := s.deps.DB
	q := `SELECT fee_paid_wei FROM eth_txs WHERE ref = ? AND purpose = 'topup'`
	cost := new(big.Int).Set(r.topupWei)
	if native {
		q = `SELECT fee_paid_wei FROM eth_txs WHERE ref = ? AND purpose = 'sweep'`
		cost = new(big.Int)
	}
	rows, err := db.Read.QueryContext(ctx, db.Q(q), r.id)
	if err != nil {
		return nil, fmt.Errorf("eth sender: sweep cost: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var paid string
		if err := rows.Scan(&paid); err != nil {
			return nil, err
		}
		v, ok := new(big.Int).SetString(paid, 10)
		if !ok {
			return nil, fmt.Errorf("eth sender: sweep %s: a transaction's fee is not known yet", r.id)
		}
		cost.Add(cost, v)
	}
	return cost, rows.Err()
}

// SweepDeposits advances the sweep of every address with a final deposit
// (eth_deposits: credited, its block final; one a reorg can still undo is
// left where it is) and returns what each did. It is meant to run
// periodically (cmd/picd); an address whose sweep fails is logged and the
// others go on; the first error is returned.
func (s *Sender) SweepDeposits(ctx context.Context) ([]SweepResult, error) {
	if s.deps.Invoices == nil {
		return nil, errors.New("eth sender: SweepDeposits needs Invoices")
	}
	db := s.deps.DB
	rows, err := db.Read.QueryContext(ctx, db.Q(`SELECT asset, address, MIN(invoice_id) FROM eth_deposits WHERE confirmed = 1 AND state = ? AND invoice_id <> ''
		GROUP BY asset, address ORDER BY asset, address LIMIT ?`), scanFinal, maxSweepRows)
	if err != nil {
		return nil, fmt.Errorf("eth sender: deposits to sweep: %w", err)
	}
	type target struct{ asset, address, invoice string }
	var targets []target
	for rows.Next() {
		var t target
		if err := rows.Scan(&t.asset, &t.address, &t.invoice); err != nil {
			rows.Close()
			return nil, err
		}
		targets = append(targets, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []SweepResult
	var first error
	for _, t := range targets {
		index, err := s.indexes.Of(ctx, t.invoice)
		if err == nil && index < 0 {
			continue // a reused address we do not hold the key of
		}
		if err == nil {
			if a, derr := s.deps.Keys.Address(domain.ChainEthereum, index); derr != nil || !strings.EqualFold(a, t.address) {
				err = fmt.Errorf("eth sender: %s is not our address at index %d", t.address, index)
			}
		}
		var res SweepResult
		if err == nil {
			res, err = s.Sweep(ctx, t.asset, index)
		}
		if err != nil {
			s.log.Error("eth: sweep failed", "asset", t.asset, "address", t.address, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		if res.State != SweepNothing {
			out = append(out, res)
		}
	}
	return out, first
}

// shortOf is the error of a payout the hot wallet cannot fund: temporary
// while credited deposits of the asset (final, or not yet) still wait to
// be swept into the hot wallet (the processor retries; sweeps run every
// minute), permanent otherwise, so the payout fails and the merchant's
// funds are released.
func (s *Sender) shortOf(ctx context.Context, asset, detail string) error {
	db := s.deps.DB
	var waiting int
	err := db.Read.QueryRowContext(ctx, db.Q(`SELECT count(*) FROM eth_deposits d WHERE d.asset = ? AND d.confirmed = 1 AND d.state IN (?, ?)
		AND NOT EXISTS (SELECT 1 FROM eth_sweeps w WHERE w.asset = d.asset AND lower(w.address) = lower(d.address)
			AND w.state = ? AND w.created_at >= d.updated_at)`), asset, chain.ScanSeen, scanFinal, SweepDone).Scan(&waiting)
	if err != nil {
		return fmt.Errorf("eth sender: deposits awaiting a sweep: %w", err)
	}
	if waiting > 0 {
		return fmt.Errorf("eth sender: hot wallet short (%s); %d %s deposits are still to be swept into it", detail, waiting, asset)
	}
	return fmt.Errorf("%w: insufficient hot-wallet funds: %s", chain.ErrPermanent, detail)
}
