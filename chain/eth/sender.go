package eth

import (
	"bytes"
	"context"
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
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/commands"
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

// Keys is the HD wallet a sender takes its addresses from (*hd.Wallet,
// watch-only or not). In embedded mode it also signs (custody.Local).
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
	// HotWalletIndex is the hot wallet's key (0: DefaultHotWalletIndex);
	// after a seed rotation, its key number in the current generation
	// (hd.Wallet.Current). Every index the sender signs with is a key
	// number (hd.KeyNumber).
	HotWalletIndex int64
	// RetiredHotWallets are the keys of older seed generations' hot
	// wallets: SweepDeposits moves what they hold into the hot wallet,
	// tokens first (paying their gas with the retired wallet's own ETH),
	// then the ETH.
	RetiredHotWallets []int64
	// Contracts overrides token contract addresses by asset code, as in Config.
	Contracts map[string]string
	Now       func() time.Time
}

// SenderDeps are the sender's collaborators.
type SenderDeps struct {
	DB   sqldb.DB // read-model database; eth.Migrate creates the tables
	Keys Keys
	// Signer signs every transaction; nil signs with Keys in this process
	// (custody.Local). A separate signer gets it through custody.Client.
	Signer   custody.Signer
	Invoices StreamReader // needed by SweepDeposits only
	Assets   domain.Assets
	Log      *slog.Logger
	// Costs books the gas the gateway pays itself (sweeps, top-ups, token
	// payouts, voids) as NetworkCostPaid events; nil books nothing.
	Costs chain.CostRecorder
}

// Sender pays out ETH and ERC-20 tokens from the gateway's hot wallet and
// sweeps deposit addresses into it; it implements chain.Sender.
//
// Transactions are EIP-1559 (fee cap = 2 × the latest base fee + the
// node's suggested tip). An ETH payout sends Amount − gas × fee cap, the
// most the network can take, recorded as its fee when signed; once mined
// its fee is what the receipt says was paid (PaidFee), and what the cap
// left unspent, which stayed in the hot wallet, goes back to the
// merchant's available balance. eth_txs shows both (max_fee_wei and, once
// mined, fee_paid_wei). A token payout calls
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

	hot      common.Address
	native   *domain.Asset
	tokens   map[string]tokenAsset // by asset code
	chainID  *big.Int
	mu       sync.Mutex // one nonce allocation or sweep step at a time in this process
	indexes  *chain.AddressIndexes
	hotIndex int64
	// retiredMoved holds the retired hot wallets found empty (sweepRetired).
	retiredMoved sync.Map
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
	if deps.Signer == nil {
		deps.Signer = custody.Local{Keys: deps.Keys}
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
	addr, err := s.address(cfg.HotWalletIndex)
	if err != nil {
		return nil, fmt.Errorf("eth sender: hot wallet: %w", err)
	}
	s.hot = addr
	return s, nil
}

// HotWallet is the address payouts are paid from and sweeps go to.
func (s *Sender) HotWallet() common.Address { return s.hot }

// Chain implements chain.Sender.
func (s *Sender) Chain() domain.Chain { return domain.ChainEthereum }

func (s *Sender) address(index int64) (common.Address, error) {
	a, err := s.deps.Keys.Address(domain.ChainEthereum, index)
	if err != nil {
		return common.Address{}, err
	}
	return common.HexToAddress(a), nil
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

// signAndStore has tx signed (req says by which address and what for) at
// the next free nonce of its address, and stores it. A payout signed
// before comes back as that earlier transaction, its nonce included: it is
// what gets stored. The caller holds s.mu.
func (s *Sender) signAndStore(ctx context.Context, req custody.Request, tx types.DynamicFeeTx, value *big.Int) (ethTx, error) {
	req.Chain = domain.ChainEthereum
	from, err := s.address(req.FromIndex)
	if err != nil {
		return ethTx{}, err
	}
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
	for attempt := 0; attempt < maxNonceRetries; attempt, nonce = attempt+1, nonce+1 {
		tx.Nonce = nonce
		signed, err := s.sign(ctx, signer, req, &tx, from)
		if err != nil {
			return ethTx{}, err
		}
		raw, err := signed.MarshalBinary()
		if err != nil {
			return ethTx{}, err
		}
		if signed.Nonce() != nonce || signed.Value().Cmp(tx.Value) != 0 {
			s.log.Warn("the signer returned the transaction it signed before for this payout", "ref", req.PayoutID, "txid", signed.Hash().Hex(),
				"nonce", signed.Nonce())
			nonce = signed.Nonce()
			if len(signed.Data()) == 0 {
				value = signed.Value()
			}
		}
		maxFee := new(big.Int).Mul(new(big.Int).SetUint64(signed.Gas()), signed.GasFeeCap())
		row := ethTx{from: from, nonce: nonce, txid: signed.Hash().Hex(), raw: hex.EncodeToString(raw), maxFee: maxFee, value: value, purpose: req.Purpose}
		_, err = db.Write.ExecContext(ctx, db.Q(`INSERT INTO eth_txs (from_address, nonce, txid, raw, purpose, ref, asset, value_units, max_fee_wei, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), from.Hex(), nonce, row.txid, row.raw, req.Purpose, req.PayoutID, req.Asset, value.String(), maxFee.String(),
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

// sign asks the signer and checks that what comes back is a transaction
// of from on this chain.
func (s *Sender) sign(ctx context.Context, signer types.Signer, req custody.Request, tx *types.DynamicFeeTx, from common.Address) (*types.Transaction, error) {
	unsigned, err := custody.UnsignedEthereum(tx)
	if err != nil {
		return nil, err
	}
	req.Unsigned = unsigned
	raw, err := s.deps.Signer.Sign(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("eth sender: sign: %w", err)
	}
	var signed types.Transaction
	if err := signed.UnmarshalBinary(raw); err != nil {
		return nil, fmt.Errorf("eth sender: the signer returned no transaction: %w", err)
	}
	if got, err := types.Sender(signer, &signed); err != nil || got != from {
		return nil, fmt.Errorf("eth sender: the signer returned a transaction of %s, not %s (%v)", got.Hex(), from.Hex(), err)
	}
	if err := sameTransfer(&signed, tx); err != nil {
		return nil, fmt.Errorf("eth sender: %s %s: the signer returned transaction %s, which %v; an operator must look",
			req.Purpose, req.PayoutID, signed.Hash().Hex(), err)
	}
	return &signed, nil
}

// sameTransfer checks that a transaction the signer returned moves what
// tx asks: to the same address (a token's contract, with the same
// transfer call), the same ETH; or, for the transaction the signer
// signed for a payout before, priced with other fees then, the same
// amount with its own most gas taken off (value + gas × fee cap), as an
// ETH payout's was.
func sameTransfer(signed *types.Transaction, tx *types.DynamicFeeTx) error {
	if signed.To() == nil || tx.To == nil || *signed.To() != *tx.To {
		return fmt.Errorf("is to %v, not %v", signed.To(), tx.To)
	}
	if !bytes.Equal(signed.Data(), tx.Data) {
		return fmt.Errorf("calls %x, not %x", signed.Data(), tx.Data)
	}
	if signed.Value().Cmp(tx.Value) == 0 {
		return nil
	}
	total := func(value *big.Int, gas uint64, feeCap *big.Int) *big.Int {
		return new(big.Int).Add(value, new(big.Int).Mul(new(big.Int).SetUint64(gas), feeCap))
	}
	if len(tx.Data) == 0 && total(signed.Value(), signed.Gas(), signed.GasFeeCap()).Cmp(total(tx.Value, tx.Gas, tx.GasFeeCap)) == 0 {
		return nil
	}
	return fmt.Errorf("sends %s wei, not %s wei", signed.Value(), tx.Value)
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

// recordFeePaid books what a mined transaction of ours paid for gas: in
// eth_txs with its block, then in the ledger when the gateway paid it
// (bookCost). A cost the log refused stays due in eth_txs (cost_booked 0)
// and BookCosts appends it again.
func (s *Sender) recordFeePaid(ctx context.Context, r *types.Receipt) *big.Int {
	paid := new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), r.EffectiveGasPrice)
	var block uint64
	if r.BlockNumber != nil {
		block = r.BlockNumber.Uint64()
	}
	db := s.deps.DB
	if _, err := db.Write.ExecContext(ctx, db.Q(`UPDATE eth_txs SET fee_paid_wei = ?, mined_block = ? WHERE txid = ?`),
		paid.String(), int64(block), r.TxHash.Hex()); err != nil {
		s.log.Warn("eth sender: recording a fee paid failed", "txid", r.TxHash.Hex(), "err", err)
		return paid
	}
	if err := s.bookCost(ctx, r.TxHash.Hex()); err != nil {
		s.log.Error("eth sender: booking a network cost failed; it is appended again with the next sweep", "txid", r.TxHash.Hex(), "err", err)
	}
	return paid
}

// maxCostsPerPass bounds the due costs one BookCosts appends.
const maxCostsPerPass = 500

// BookCosts appends the network costs eth_txs holds as due (fee known,
// not in the log yet: an append that failed, or rows from before costs
// were booked). The event's id derives from the txid, so one the log has
// already adds nothing. It runs with every sweep (SweepDeposits).
func (s *Sender) BookCosts(ctx context.Context) error {
	if s.deps.Costs == nil || s.native == nil {
		return nil
	}
	db := s.deps.DB
	rows, err := db.Read.QueryContext(ctx, db.Q(`SELECT txid FROM eth_txs WHERE cost_booked = 0 AND fee_paid_wei <> '' ORDER BY created_at LIMIT ?`), maxCostsPerPass)
	if err != nil {
		return fmt.Errorf("eth sender: costs due: %w", err)
	}
	var due []string
	for rows.Next() {
		var txid string
		if err := rows.Scan(&txid); err != nil {
			rows.Close()
			return err
		}
		due = append(due, txid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var first error
	for _, txid := range due {
		if err := s.bookCost(ctx, txid); err != nil && first == nil {
			first = fmt.Errorf("eth sender: booking the network cost of %s: %w", txid, err)
		}
	}
	return first
}

// bookCost books the gas of a mined transaction of ours (eth_txs, its fee
// known) as the operator's cost (money rule 7), unless a merchant paid it:
// an ETH payout or refund carries its own fee in PayoutConfirmed. A
// reverted transaction paid its gas too. Once the log has it (or none is
// owed), the row is marked booked.
func (s *Sender) bookCost(ctx context.Context, txid string) error {
	if s.deps.Costs == nil || s.native == nil {
		return nil
	}
	db := s.deps.DB
	var from, purpose, ref, asset, fee string
	var block int64
	err := db.Read.QueryRowContext(ctx, db.Q(`SELECT from_address, purpose, ref, asset, fee_paid_wei, mined_block FROM eth_txs WHERE txid = ?`), txid).
		Scan(&from, &purpose, &ref, &asset, &fee, &block)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // not one of ours
	}
	if err != nil {
		return err
	}
	paid, ok := new(big.Int).SetString(fee, 10)
	if !ok {
		return fmt.Errorf("eth_txs %s: fee paid %q", txid, fee)
	}
	var kind string
	switch purpose {
	case "sweep":
		kind = domain.CostSweepGas
	case "topup":
		kind = domain.CostGasTopUp
	case "void":
		kind = domain.CostVoid
	case "payout":
		if asset != s.native.Code {
			kind = domain.CostTokenPayoutGas
		} // else the merchant's: PayoutConfirmed posts it
	default:
		return fmt.Errorf("eth_txs purpose %q", purpose)
	}
	if kind != "" {
		if err := s.deps.Costs(ctx, commands.RecordNetworkCost{Chain: domain.ChainEthereum, TxID: txid, Kind: kind, Asset: s.native.Code,
			Amount: domain.FromBaseUnits(paid, 18), From: from, Ref: ref, Block: uint64(max(0, block))}); err != nil {
			return err
		}
	}
	_, err = db.Write.ExecContext(ctx, db.Q(`UPDATE eth_txs SET cost_booked = 1 WHERE txid = ?`), txid)
	return err
}
