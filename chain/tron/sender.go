package tron

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// SenderNode is the part of a TRON node's HTTP API the sender uses.
// *HTTPClient implements it.
type SenderNode interface {
	NowBlock(ctx context.Context) (Block, error)
	Account(ctx context.Context, address string) (Account, error)
	AccountResource(ctx context.Context, address string) (AccountResource, error)
	ChainParameters(ctx context.Context) (map[string]int64, error)
	CreateTransaction(ctx context.Context, owner, to string, amountSun int64) (Transaction, error)
	TriggerSmartContract(ctx context.Context, r TriggerRequest) (TransactionExtention, error)
	TriggerConstantContract(ctx context.Context, r TriggerRequest) (TransactionExtention, error)
	// TransactionInfoByID errors: ErrNotFound.
	TransactionInfoByID(ctx context.Context, txid string) (TransactionInfo, error)
	BroadcastHex(ctx context.Context, signedTx []byte) (BroadcastResult, error)
}

var _ SenderNode = (*HTTPClient)(nil)

// Keys gives the wallet's addresses (*hd.Wallet, watch-only or not); in
// embedded mode it also signs (custody.Local).
type Keys interface {
	Address(chain domain.Chain, index int64) (string, error)
	PrivateKey(chain domain.Chain, index int64) (*btcec.PrivateKey, error)
}

// Prices converts the TRX a token payout burns into the token (the price
// oracle, chain/oracle, implements it). Errors: domain.ErrPriceUnavailable.
type Prices interface {
	Price(ctx context.Context, base, quote string) (domain.PriceQuote, error)
}

// DefaultHotWalletIndex is the HD index (m/44'/195'/0'/0/index) of the hot
// wallet: the last non-hardened index, far from the indexes the address
// allocator hands to invoices, so that no invoice is ever paid to it.
const DefaultHotWalletIndex = 1<<31 - 1

// SenderConfig tunes the sender. The zero value is usable.
type SenderConfig struct {
	// HotWalletIndex is the hot wallet's key (default DefaultHotWalletIndex);
	// after a seed rotation, its key number in the current generation
	// (hd.Wallet.Current). Every index the sender signs with is a key
	// number (hd.KeyNumber).
	HotWalletIndex int64
	// RetiredHotWallets are the keys of older seed generations' hot
	// wallets: SweepDeposits moves what they hold into the hot wallet,
	// tokens first (burning the retired wallet's own TRX, topped up
	// when it lacks some), then the TRX.
	RetiredHotWallets []int64
	// Contracts overrides token contract addresses (base58) by asset code.
	Contracts map[string]string
	// Prices, when set, converts a token payout's TRX cost into the token:
	// that is the network fee deducted from the payout, so the merchant
	// pays it as the API promises; the network takes none of the token, so
	// it is the operator's revenue (domain.NetworkFeeRevenueAccount).
	// Without it a token payout records a network fee of 0. Either way the
	// TRX burned is the operator's cost (a NetworkCostPaid, with Costs).
	Prices Prices
	// MaxFeeLimitSun caps the TRX a token transfer may burn for energy
	// (its fee_limit; default 100 TRX). A payout whose estimate needs more
	// fails rather than burn it.
	MaxFeeLimitSun int64
	// EnergyMarginBps is the margin on the energy estimate that the
	// fee_limit and the hot wallet's TRX must cover (default 2000: 20 %).
	EnergyMarginBps int64
	// Expiration is how long a signed transaction stays valid (default
	// 1 h; at most 23 h, TRON refuses more than 24 h). Broadcast retries
	// within it; after it the payout fails and its funds are released.
	Expiration time.Duration
	// Invoices reads the event log (eventstore.Store): SweepDeposits learns
	// a deposit address's HD index from its invoice's InvoiceCreated.
	// Needed by SweepDeposits only.
	Invoices StreamReader
	// Costs books the TRX the gateway burns itself (sweeps, top-ups,
	// token payouts) as NetworkCostPaid events; nil books nothing.
	Costs  chain.CostRecorder
	Now    func() time.Time
	Logger *slog.Logger
	// Signer signs every transaction; nil signs with the wallet in this
	// process (custody.Local). A separate signer: custody.Client.
	Signer custody.Signer
}

// Sender pays out TRX and TRC-20 tokens from the hot wallet: it builds each
// transaction through the node (createtransaction, triggersmartcontract),
// checks that the node built exactly what was asked, signs it locally
// (secp256k1 over the txID = sha256(raw_data), 65 bytes r‖s‖v), and
// broadcasts the signed bytes (broadcasthex). Energy and bandwidth are
// estimated before signing and recorded as the network fee.
// It also sweeps deposit addresses into the hot wallet (sweep.go).
type Sender struct {
	cfg      SenderConfig
	node     SenderNode
	keys     Keys
	db       sqldb.DB
	hot      string // base58
	hotBytes []byte
	tokens   map[string][]byte // asset code → contract (21 bytes)
	native   string            // the TRX asset's code; "" when TRX is not an asset

	mu      sync.Mutex // one sweep step at a time in this process
	indexes *chain.AddressIndexes
	assets  domain.Assets // finality depths of unmatched deposits to sweep
	// retiredMoved holds the retired hot wallets found empty (sweepRetired).
	retiredMoved sync.Map
}

var _ chain.Sender = (*Sender)(nil)

// Errors of the sender.
var (
	// ErrHotWalletFunds: the hot wallet cannot pay a payout (its asset or
	// the TRX its energy and bandwidth burn). It wraps chain.ErrPermanent.
	ErrHotWalletFunds = fmt.Errorf("%w: insufficient hot-wallet funds", chain.ErrPermanent)
	// ErrFailedOnChain: a payout's transaction is in a block but failed
	// (a reverted or out-of-energy token transfer): nothing was paid.
	ErrFailedOnChain = fmt.Errorf("%w: tron: payout transaction failed on chain", chain.ErrPermanent)
	// ErrDryRunReverted: the node's dry run of the transfer reverted:
	// signed, it would revert on chain and burn TRX for nothing, so
	// nothing is signed.
	ErrDryRunReverted = fmt.Errorf("%w: tron: the dry run of the transfer reverted", chain.ErrPermanent)
	// errBadBuild: the node built another transaction than the one asked for.
	errBadBuild = errors.New("tron: the node built an unexpected transaction")
)

// NewSender builds a sender for the TRON assets of assets. Run Migrate on
// db first. Errors: a bad configuration or an unusable key.
func NewSender(cfg SenderConfig, node SenderNode, keys Keys, db sqldb.DB, assets domain.Assets) (*Sender, error) {
	if cfg.HotWalletIndex == 0 {
		cfg.HotWalletIndex = DefaultHotWalletIndex
	}
	if cfg.MaxFeeLimitSun <= 0 {
		cfg.MaxFeeLimitSun = 100_000_000
	}
	if cfg.EnergyMarginBps <= 0 {
		cfg.EnergyMarginBps = 2000
	}
	if cfg.Expiration <= 0 {
		cfg.Expiration = time.Hour
	}
	if cfg.Expiration > 23*time.Hour {
		return nil, errors.New("tron sender: expiration above 23 h (TRON refuses more than 24 h)")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Signer == nil {
		cfg.Signer = custody.Local{Keys: keys}
	}
	hot, err := keys.Address(domain.ChainTron, cfg.HotWalletIndex)
	if err != nil {
		return nil, fmt.Errorf("tron sender: hot wallet: %w", err)
	}
	s := &Sender{cfg: cfg, node: node, keys: keys, db: db, hot: hot, tokens: map[string][]byte{}, indexes: chain.NewAddressIndexes(cfg.Invoices)}
	s.hotBytes, _ = DecodeAddress(hot)
	s.assets = assets
	for _, a := range assets.List() {
		if a.Chain != domain.ChainTron {
			continue
		}
		if a.Native() {
			s.native = a.Code
			continue
		}
		c := a.Contract
		if o, ok := cfg.Contracts[a.Code]; ok {
			c = o
		}
		b, err := DecodeAddress(c)
		if err != nil {
			return nil, fmt.Errorf("tron sender: %s contract: %w", a.Code, err)
		}
		s.tokens[a.Code] = b
	}
	s.cfg.Logger = cfg.Logger.With("chain", "tron")
	return s, nil
}

// Chain implements chain.Sender.
func (s *Sender) Chain() domain.Chain { return domain.ChainTron }

// HotWalletAddress is the address payouts are sent from; fund it with the
// assets paid out and with TRX for energy and bandwidth.
func (s *Sender) HotWalletAddress() string { return s.hot }

// fees are the chain parameters a fee estimate needs (sun).
type fees struct {
	energySun, byteSun, createAccountSun, newAccountSystemSun int64
}

func (s *Sender) fees(ctx context.Context) (fees, error) {
	p, err := s.node.ChainParameters(ctx)
	if err != nil {
		return fees{}, fmt.Errorf("tron chain parameters: %w", err)
	}
	f := fees{energySun: p["getEnergyFee"], byteSun: p["getTransactionFee"], createAccountSun: p["getCreateAccountFee"],
		newAccountSystemSun: p["getCreateNewAccountFeeInSystemContract"]}
	if f.energySun <= 0 || f.byteSun <= 0 {
		return fees{}, fmt.Errorf("tron chain parameters: no getEnergyFee or getTransactionFee")
	}
	return f, nil
}

// bandwidthBytes is what a transaction consumes: its signed size (one
// signature, no ret) plus the 64 bytes java-tron's BandwidthProcessor adds
// for the result (MAX_RESULT_SIZE_IN_TX).
func bandwidthBytes(raw []byte) int64 {
	return int64(len(MarshalTransaction(raw, [][]byte{make([]byte, 65)}))) + 64
}

// bandwidthFeeSun is the TRX a transaction of size bytes burns for
// bandwidth: nothing when the account's staked or free daily bandwidth
// covers it, otherwise every byte at getTransactionFee (TRON does not mix
// the two). A transfer that activates its recipient uses staked bandwidth
// or burns getCreateAccountFee instead, plus getCreateNewAccountFeeInSystemContract.
func bandwidthFeeSun(size int64, r AccountResource, f fees, newAccount bool) int64 {
	staked := r.NetLimit - r.NetUsed
	if newAccount {
		fee := f.newAccountSystemSun
		if staked < size {
			fee += f.createAccountSun
		}
		return fee
	}
	if staked >= size || r.FreeNetLimit-r.FreeNetUsed >= size {
		return 0
	}
	return size * f.byteSun
}

// returnsTrue reports whether a dry run returned the ABI bool true (a
// transfer that returns nothing, as some tokens do, counts as true).
// transferEnergy reads the dry run of a token transfer: the energy it
// uses (penalty included). Errors: ErrDryRunReverted (permanent) for a
// call that reverted; a temporary error when the node could not run it
// (result false: busy, an API error) or the token answered false.
func transferEnergy(sim TransactionExtention) (int64, error) {
	if reverted, why := sim.Reverted(); reverted {
		return 0, fmt.Errorf("%w: %s", ErrDryRunReverted, why)
	}
	if !sim.Result.Result {
		return 0, fmt.Errorf("the dry run of the transfer failed: %s %s", sim.Result.Code, nodeMessage(sim.Result.Message))
	}
	if !returnsTrue(sim.ConstantResult) {
		// Not a revert: kept a temporary error, as before. Some tokens
		// return false from a transfer that moved the tokens (the TRON
		// docs' own dry-run sample logs a Transfer and returns 0).
		return 0, fmt.Errorf("the dry run of the transfer answered %s, not true", sim.ConstantResult[0])
	}
	if sim.Energy() <= 0 {
		return 0, fmt.Errorf("the dry run of the transfer reports no energy used")
	}
	return sim.Energy(), nil
}

func returnsTrue(results []string) bool {
	if len(results) == 0 || results[0] == "" {
		return true
	}
	b, err := hex.DecodeString(results[0])
	return err == nil && len(b) == 32 && new(big.Int).SetBytes(b).Cmp(big.NewInt(1)) == 0
}

// verifyBuilt decodes what the node built and checks the common parts:
// the id is the hash of the bytes, our encoder reproduces the bytes
// exactly, one contract of the type asked for, no memo, no permission.
func (s *Sender) verifyBuilt(tx Transaction, typ ContractType, typeURL string) (RawTx, Contract, error) {
	raw, err := hex.DecodeString(tx.RawDataHex)
	if err != nil {
		return RawTx{}, Contract{}, fmt.Errorf("%w: raw_data_hex: %v", errBadBuild, err)
	}
	if tx.TxID != "" && TxID(raw) != strings.ToLower(tx.TxID) {
		return RawTx{}, Contract{}, fmt.Errorf("%w: txID is not sha256(raw_data)", errBadBuild)
	}
	r, err := UnmarshalRawTx(raw)
	if err != nil {
		return RawTx{}, Contract{}, fmt.Errorf("%w: %v", errBadBuild, err)
	}
	if !bytes.Equal(r.Marshal(), raw) {
		return RawTx{}, Contract{}, fmt.Errorf("%w: its encoding is not canonical", errBadBuild)
	}
	if len(r.Contracts) != 1 || len(r.Data) != 0 || len(r.RefBlockBytes) != 2 || len(r.RefBlockHash) != 8 {
		return RawTx{}, Contract{}, fmt.Errorf("%w: want one contract, no memo and a reference block", errBadBuild)
	}
	c := r.Contracts[0]
	if c.Type != typ || c.TypeURL != typeURL || c.PermissionID != 0 {
		return RawTx{}, Contract{}, fmt.Errorf("%w: contract type %d %q", errBadBuild, c.Type, c.TypeURL)
	}
	return r, c, nil
}

func (s *Sender) verifyTransfer(tx Transaction, owner, to []byte, units int64) (RawTx, error) {
	r, c, err := s.verifyBuilt(tx, TransferContractType, transferTypeURL)
	if err != nil {
		return RawTx{}, err
	}
	t, err := UnmarshalTransfer(c.Value)
	if err != nil {
		return RawTx{}, fmt.Errorf("%w: %v", errBadBuild, err)
	}
	if !bytes.Equal(t.Owner, owner) || !bytes.Equal(t.To, to) || t.Amount != units || r.FeeLimit != 0 {
		return RawTx{}, fmt.Errorf("%w: transfer of %d from %x to %x, asked %d to %x", errBadBuild, t.Amount, t.Owner, t.To, units, to)
	}
	return r, nil
}

func (s *Sender) verifyTrigger(tx Transaction, owner, contract, data []byte, feeLimit int64) (RawTx, error) {
	r, c, err := s.verifyBuilt(tx, TriggerSmartContractType, triggerTypeURL)
	if err != nil {
		return RawTx{}, err
	}
	t, err := UnmarshalTrigger(c.Value)
	if err != nil {
		return RawTx{}, fmt.Errorf("%w: %v", errBadBuild, err)
	}
	if !bytes.Equal(t.Owner, owner) || !bytes.Equal(t.Contract, contract) || !bytes.Equal(t.Data, data) ||
		t.CallValue != 0 || t.CallTokenValue != 0 || t.TokenID != 0 || r.FeeLimit != feeLimit {
		return RawTx{}, fmt.Errorf("%w: contract call differs from the transfer asked for", errBadBuild)
	}
	return r, nil
}

// sign has raw signed by the key at HD index (the hot wallet's, or a
// deposit address's for a sweep), req saying what for: a recoverable
// secp256k1 signature over txID = sha256(raw), 65 bytes r‖s‖v, as
// java-tron's ECKey writes it. The signer answers with the signature
// (custody.Local) or the signed transaction (a separate signer); a signer
// gives the transaction it signed before for a payout it signed before,
// whatever raw is: that is an *earlierTron error here, for build to
// adopt. It checks the signature is the index's over the transaction's
// raw data and returns the signed Transaction's bytes and the txID.
func (s *Sender) sign(ctx context.Context, req custody.Request, raw []byte, index int64) ([]byte, string, error) {
	req.Chain, req.FromIndex, req.Unsigned = domain.ChainTron, index, raw
	want, err := s.keys.Address(domain.ChainTron, index)
	if err != nil {
		return nil, "", fmt.Errorf("tron: address %d: %w", index, err)
	}
	answer, err := s.cfg.Signer.Sign(ctx, req)
	if err != nil {
		return nil, "", fmt.Errorf("tron: sign: %w", err)
	}
	signedRaw, sig := raw, answer
	if len(answer) != 65 {
		r, sigs, err := UnmarshalTransaction(answer)
		if err != nil || len(sigs) != 1 {
			return nil, "", fmt.Errorf("tron: the signer answered neither a signature nor a signed transaction (%v)", err)
		}
		signedRaw, sig = r, sigs[0]
	}
	txid := TxID(signedRaw)
	id, _ := hex.DecodeString(txid)
	if !signedBy(id, sig, want) {
		return nil, "", fmt.Errorf("tron: the signer's signature is not %s's over %s; an operator must look", want, txid)
	}
	if !bytes.Equal(signedRaw, raw) {
		return nil, "", &earlierTron{raw: signedRaw, sig: sig}
	}
	return MarshalTransaction(raw, [][]byte{sig}), txid, nil
}

// earlierTron: the signer answered with the transaction it signed for the
// payout before (its signature checked), not the one asked for.
type earlierTron struct{ raw, sig []byte }

func (e *earlierTron) Error() string {
	return fmt.Sprintf("tron: the signer returned its earlier transaction %s", TxID(e.raw))
}

// signedBy tells whether sig over id recovers to the TRON address want.
func signedBy(id, sig []byte, want string) bool {
	pub, err := crypto.SigToPub(id, sig)
	if err != nil {
		return false
	}
	k, err := btcec.ParsePubKey(crypto.FromECDSAPub(pub))
	return err == nil && hd.TronAddress(k) == want
}

// Broadcast implements chain.Sender: it sends the recorded signed bytes
// (broadcasthex). A transaction already in a block or in the node's pool
// is success. Errors: chain.ErrPermanent when the transaction can never
// confirm (a bad signature, its reference block gone, expired, too big);
// others are temporary.
func (s *Sender) Broadcast(ctx context.Context, tx chain.Signed) error {
	signed, err := hex.DecodeString(tx.Raw)
	if err != nil {
		return fmt.Errorf("%w: raw transaction is not hex", chain.ErrPermanent)
	}
	raw, _, err := UnmarshalTransaction(signed)
	if err != nil || TxID(raw) != tx.TxID {
		return fmt.Errorf("%w: the recorded transaction does not match its txid %s", chain.ErrPermanent, tx.TxID)
	}
	if _, err := s.node.TransactionInfoByID(ctx, tx.TxID); err == nil {
		return nil // already in a block
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("tron broadcast %s: %w", tx.TxID, err)
	}
	res, err := s.node.BroadcastHex(ctx, signed)
	if err != nil {
		return fmt.Errorf("tron broadcast %s: %w", tx.TxID, err)
	}
	if res.Result || res.Code == "DUP_TRANSACTION_ERROR" {
		return nil
	}
	msg := nodeMessage(res.Message)
	switch res.Code {
	case "SIGERROR", "TAPOS_ERROR", "TOO_BIG_TRANSACTION_ERROR":
		return fmt.Errorf("%w: broadcast %s refused: %s %s", chain.ErrPermanent, tx.TxID, res.Code, msg)
	case "TRANSACTION_EXPIRATION_ERROR":
		if r, err := UnmarshalRawTx(raw); err == nil && r.Expiration <= s.cfg.Now().UnixMilli() {
			return fmt.Errorf("%w: transaction %s expired before it reached a block", chain.ErrPermanent, tx.TxID)
		}
	}
	return fmt.Errorf("tron broadcast %s refused: %s %s", tx.TxID, res.Code, msg)
}

// Confirmations implements chain.Sender: the depth of the transaction's
// block. Errors: ErrNotFound while it is in no block; ErrFailedOnChain
// for a transaction that is in a block but failed (never confirmed).
func (s *Sender) Confirmations(ctx context.Context, txid string) (int, error) {
	info, err := s.node.TransactionInfoByID(ctx, txid)
	if err != nil {
		return 0, fmt.Errorf("tron confirmations of %s: %w", txid, err)
	}
	if err := s.notePayoutBurn(ctx, info); err != nil {
		s.cfg.Logger.Error("tron: booking a network cost failed; it is appended again with the next sweep", "txid", txid, "err", err)
	}
	if info.Failed() {
		s.cfg.Logger.Error("tron: payout transaction failed on chain; nothing was paid", "txid", txid, "result", info.Receipt.Result,
			"message", nodeMessage(info.ResMessage))
		return 0, fmt.Errorf("%w: %s: %s %s", ErrFailedOnChain, txid, info.Receipt.Result, nodeMessage(info.ResMessage))
	}
	head, err := s.node.NowBlock(ctx)
	if err != nil {
		return 0, fmt.Errorf("tron head: %w", err)
	}
	return int(max(0, head.Number()-info.BlockNumber+1)), nil
}

// nodeMessage shows a node's message: hex-encoded text when visible is
// false, as java-tron sends it, is decoded.
func nodeMessage(m string) string {
	if b, err := hex.DecodeString(m); err == nil && len(b) > 0 && utf8.Valid(b) {
		return string(b)
	}
	return m
}

func sunString(sun int64) string { return domain.FromBaseUnits(big.NewInt(sun), 6).String() }

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// transferSelector is the first 4 bytes of keccak256("transfer(address,uint256)").
var transferSelector = []byte{0xa9, 0x05, 0x9c, 0xbb}

// transferParameter ABI-encodes (address to, uint256 units): two 32-byte
// words, the address as its 20 bytes left-padded.
func transferParameter(to []byte, units int64) []byte {
	p := make([]byte, 64)
	copy(p[12:32], to[1:])
	big.NewInt(units).FillBytes(p[32:64])
	return p
}
