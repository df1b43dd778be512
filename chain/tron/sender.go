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
	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/chain"
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

// Keys gives the hot wallet's signing key; *hd.Wallet implements it.
type Keys interface {
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
	// HotWalletIndex is the hot wallet's HD index (default DefaultHotWalletIndex).
	HotWalletIndex int64
	// Contracts overrides token contract addresses (base58) by asset code.
	Contracts map[string]string
	// Prices, when set, converts a token payout's TRX cost into the token:
	// that is the network fee deducted from the payout, so the merchant
	// pays it as the API promises. Without it a token payout records a
	// network fee of 0 and its TRX cost only in tron_payout_txs (the
	// platform bears it).
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
	Now      func() time.Time
	Logger   *slog.Logger
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
	key, err := keys.PrivateKey(domain.ChainTron, cfg.HotWalletIndex)
	if err != nil {
		return nil, fmt.Errorf("tron sender: hot wallet key: %w", err)
	}
	hot := hd.TronAddress(key.PubKey())
	key.Zero()
	s := &Sender{cfg: cfg, node: node, keys: keys, db: db, hot: hot, tokens: map[string][]byte{}, indexes: chain.NewAddressIndexes(cfg.Invoices)}
	s.hotBytes, _ = DecodeAddress(hot)
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

// estimate is what Build worked out for one payout.
type estimate struct {
	sentUnits, feeTRXSun, energy, bandwidth, feeLimitSun int64
	fee                                                  domain.Amount // in the payout's asset
}

// Build implements chain.Sender. It estimates the network cost, checks the
// hot wallet can pay it, builds the transaction through the node, verifies
// it and signs it. Errors: chain.ErrPermanent (wrapped) for an invalid
// address, a fee not below the amount, a cost above MaxFeeLimitSun, and
// ErrHotWalletFunds; others are temporary.
func (s *Sender) Build(ctx context.Context, p chain.PayoutToSend) (chain.Signed, error) {
	return s.build(ctx, p, false)
}

// BuildFeeOnTop implements chain.FeeOnTopSender (refunds): the recipient
// gets exactly p.Amount and the network fee is paid on top of it, booked
// as for Build. A TRX transfer sends the whole amount and burns its
// bandwidth (or the account-creation fee) from the hot wallet's TRX on
// top: that TRX is its NetworkFee, and the hot wallet must hold amount +
// fee. A TRC-20 transfer sends the whole amount; the TRX it burns for
// energy and bandwidth is converted into the token with
// SenderConfig.Prices (without them the NetworkFee is 0 and the TRX is
// booked in tron_payout_txs only), as for any token payout, but debited on
// top instead of deducted. Same errors as Build, without the fee having to
// be below the amount.
func (s *Sender) BuildFeeOnTop(ctx context.Context, p chain.PayoutToSend) (chain.Signed, error) {
	return s.build(ctx, p, true)
}

var _ chain.FeeOnTopSender = (*Sender)(nil)

func (s *Sender) build(ctx context.Context, p chain.PayoutToSend, feeOnTop bool) (chain.Signed, error) {
	if p.Asset.Chain != domain.ChainTron {
		return chain.Signed{}, fmt.Errorf("%w: %s is not a TRON asset", chain.ErrPermanent, p.Asset.Code)
	}
	if err := hd.ValidateAddress(domain.ChainTron, p.ToAddress, nil); err != nil {
		return chain.Signed{}, fmt.Errorf("%w: %v", chain.ErrPermanent, err)
	}
	to, _ := DecodeAddress(p.ToAddress)
	if bytes.Equal(to, s.hotBytes) {
		return chain.Signed{}, fmt.Errorf("%w: the payout address is the hot wallet itself", chain.ErrPermanent)
	}
	units, err := p.Amount.BaseUnits(p.Asset.Decimals)
	if err != nil || !units.IsInt64() || units.Sign() <= 0 {
		return chain.Signed{}, fmt.Errorf("%w: amount %s cannot be sent", chain.ErrPermanent, p.Amount)
	}
	f, err := s.fees(ctx)
	if err != nil {
		return chain.Signed{}, err
	}
	hotAcct, err := s.node.Account(ctx, s.hot)
	if err != nil {
		return chain.Signed{}, fmt.Errorf("tron hot wallet account: %w", err)
	}
	res, err := s.node.AccountResource(ctx, s.hot)
	if err != nil {
		return chain.Signed{}, fmt.Errorf("tron hot wallet resources: %w", err)
	}
	var raw RawTx
	var est estimate
	if p.Asset.Native() {
		raw, est, err = s.buildTRX(ctx, p, to, units.Int64(), hotAcct, res, f, feeOnTop)
	} else {
		raw, est, err = s.buildToken(ctx, p, to, units.Int64(), hotAcct, res, f, feeOnTop)
	}
	if err != nil {
		return chain.Signed{}, err
	}
	base := raw.Timestamp
	if base == 0 {
		base = s.cfg.Now().UnixMilli()
	}
	raw.Expiration = base + s.cfg.Expiration.Milliseconds()
	rawBytes := raw.Marshal()
	signed, txid, err := s.sign(rawBytes, s.cfg.HotWalletIndex)
	if err != nil {
		return chain.Signed{}, err
	}
	if err := s.record(ctx, p, txid, est, raw.Expiration); err != nil {
		return chain.Signed{}, err
	}
	s.cfg.Logger.Info("tron: payout signed", "payout_id", p.PayoutID, "txid", txid, "asset", p.Asset.Code,
		"network_fee", est.fee.String(), "fee_trx", domain.FromBaseUnits(big.NewInt(est.feeTRXSun), 6).String(),
		"energy", est.energy, "bandwidth_bytes", est.bandwidth)
	return chain.Signed{TxID: txid, Raw: hex.EncodeToString(signed), NetworkFee: est.fee}, nil
}

// buildTRX estimates and builds a TRX transfer of units − fee, or of
// units with the fee burned on top when feeOnTop.
func (s *Sender) buildTRX(ctx context.Context, p chain.PayoutToSend, to []byte, units int64, hot Account, res AccountResource, f fees, feeOnTop bool) (RawTx, estimate, error) {
	toAcct, err := s.node.Account(ctx, p.ToAddress)
	if err != nil {
		return RawTx{}, estimate{}, fmt.Errorf("tron account %s: %w", p.ToAddress, err)
	}
	if hot.Balance < units {
		return RawTx{}, estimate{}, fmt.Errorf("%w: hot wallet %s holds %s TRX, the payout needs %s TRX", ErrHotWalletFunds, s.hot,
			sunString(hot.Balance), sunString(units))
	}
	// The size does not depend on the amount's last digits but for a
	// varint byte: a first build of the whole amount sizes it.
	first, err := s.node.CreateTransaction(ctx, s.hot, p.ToAddress, units)
	if err != nil {
		return RawTx{}, estimate{}, fmt.Errorf("tron createtransaction: %w", err)
	}
	r, err := s.verifyTransfer(first, s.hotBytes, to, units)
	if err != nil {
		return RawTx{}, estimate{}, err
	}
	size := bandwidthBytes(r.Marshal())
	feeSun := bandwidthFeeSun(size, res, f, !toAcct.Exists())
	if feeOnTop {
		// The first build is the transaction: exactly units, its size
		// measured, the fee burned on top from the hot wallet's TRX.
		if hot.Balance < units+feeSun {
			return RawTx{}, estimate{}, fmt.Errorf("%w: hot wallet %s holds %s TRX, the refund needs %s TRX and %s TRX of network fee on top",
				ErrHotWalletFunds, s.hot, sunString(hot.Balance), sunString(units), sunString(feeSun))
		}
		return r, estimate{sentUnits: units, feeTRXSun: feeSun, bandwidth: size, fee: domain.FromBaseUnits(big.NewInt(feeSun), p.Asset.Decimals)}, nil
	}
	if feeSun >= units {
		return RawTx{}, estimate{}, fmt.Errorf("%w: network fee %s TRX is not below the payout's %s TRX", chain.ErrPermanent, sunString(feeSun), p.Amount)
	}
	sent := units - feeSun
	tx, err := s.node.CreateTransaction(ctx, s.hot, p.ToAddress, sent)
	if err != nil {
		return RawTx{}, estimate{}, fmt.Errorf("tron createtransaction: %w", err)
	}
	if r, err = s.verifyTransfer(tx, s.hotBytes, to, sent); err != nil {
		return RawTx{}, estimate{}, err
	}
	return r, estimate{sentUnits: sent, feeTRXSun: feeSun, bandwidth: size, fee: domain.FromBaseUnits(big.NewInt(feeSun), p.Asset.Decimals)}, nil
}

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

// buildToken estimates and builds a TRC-20 transfer(to, units − fee), or
// transfer(to, units) with the fee (in the token) debited on top when
// feeOnTop.
func (s *Sender) buildToken(ctx context.Context, p chain.PayoutToSend, to []byte, units int64, hot Account, res AccountResource, f fees, feeOnTop bool) (RawTx, estimate, error) {
	contract, ok := s.tokens[p.Asset.Code]
	if !ok {
		return RawTx{}, estimate{}, fmt.Errorf("%w: no contract for %s", chain.ErrPermanent, p.Asset.Code)
	}
	contractB58 := EncodeAddress(contract)
	bal, err := s.tokenBalance(ctx, contractB58)
	if err != nil {
		return RawTx{}, estimate{}, err
	}
	if bal.Cmp(big.NewInt(units)) < 0 {
		return RawTx{}, estimate{}, fmt.Errorf("%w: hot wallet %s holds %s %s, the payout needs %s", ErrHotWalletFunds, s.hot,
			domain.FromBaseUnits(bal, p.Asset.Decimals), p.Asset.Code, p.Amount)
	}
	// Energy: what the node's dry run of the transfer uses, less the hot
	// wallet's staked energy, burned at getEnergyFee.
	sim, err := s.node.TriggerConstantContract(ctx, TriggerRequest{OwnerAddress: s.hot, ContractAddress: contractB58,
		FunctionSelector: "transfer(address,uint256)", Parameter: hex.EncodeToString(transferParameter(to, units))})
	if err != nil {
		return RawTx{}, estimate{}, fmt.Errorf("tron energy estimate: %w", err)
	}
	if !sim.Result.Result || sim.EnergyUsed <= 0 || !returnsTrue(sim.ConstantResult) {
		return RawTx{}, estimate{}, fmt.Errorf("tron energy estimate: the dry run of the transfer failed: %s %s", sim.Result.Code, nodeMessage(sim.Result.Message))
	}
	energy := sim.EnergyUsed
	burn := max(0, energy-max(0, res.EnergyLimit-res.EnergyUsed))
	energySun := burn * f.energySun
	feeLimit := ceilDiv(energy*f.energySun*(10_000+s.cfg.EnergyMarginBps), 10_000)
	if feeLimit > s.cfg.MaxFeeLimitSun {
		return RawTx{}, estimate{}, fmt.Errorf("%w: the transfer needs about %d energy, up to %s TRX, above the fee limit of %s TRX",
			chain.ErrPermanent, energy, sunString(feeLimit), sunString(s.cfg.MaxFeeLimitSun))
	}
	call := func(amount int64) (RawTx, error) {
		param := transferParameter(to, amount)
		ext, err := s.node.TriggerSmartContract(ctx, TriggerRequest{OwnerAddress: s.hot, ContractAddress: contractB58,
			FunctionSelector: "transfer(address,uint256)", Parameter: hex.EncodeToString(param), FeeLimit: feeLimit})
		if err != nil {
			return RawTx{}, fmt.Errorf("tron triggersmartcontract: %w", err)
		}
		if !ext.Result.Result || ext.Transaction == nil {
			return RawTx{}, fmt.Errorf("tron triggersmartcontract: %s %s", ext.Result.Code, nodeMessage(ext.Result.Message))
		}
		return s.verifyTrigger(*ext.Transaction, s.hotBytes, contract, append(append([]byte{}, transferSelector...), param...), feeLimit)
	}
	first, err := call(units)
	if err != nil {
		return RawTx{}, estimate{}, err
	}
	size := bandwidthBytes(first.Marshal())
	bwSun := bandwidthFeeSun(size, res, f, false)
	// The hot wallet must hold the TRX the transfer may burn: without it
	// the transfer would run out of energy on chain (TRX burned, nothing
	// paid). Fail now, clearly, instead.
	needSun := ceilDiv(energySun*(10_000+s.cfg.EnergyMarginBps), 10_000) + bwSun
	if hot.Balance < needSun {
		return RawTx{}, estimate{}, fmt.Errorf("%w: hot wallet %s holds %s TRX, a %s payout needs about %s TRX for energy (%d at %d sun) and bandwidth (%d bytes): top it up with TRX",
			ErrHotWalletFunds, s.hot, sunString(hot.Balance), p.Asset.Code, sunString(needSun), burn, f.energySun, size)
	}
	est := estimate{feeTRXSun: energySun + bwSun, energy: energy, bandwidth: size, feeLimitSun: feeLimit}
	if s.cfg.Prices != nil && est.feeTRXSun > 0 {
		q, err := s.cfg.Prices.Price(ctx, "TRX", p.Asset.Code)
		if err != nil {
			return RawTx{}, estimate{}, fmt.Errorf("tron: network fee in %s: %w", p.Asset.Code, err)
		}
		trx := decimal.New(est.feeTRXSun, -6)
		est.fee = domain.AmountFromDecimal(trx.Mul(q.Rate).RoundUp(p.Asset.Decimals))
	}
	feeUnits, err := est.fee.BaseUnits(p.Asset.Decimals)
	if err != nil {
		return RawTx{}, estimate{}, err
	}
	if feeOnTop {
		est.sentUnits = units
		return first, est, nil
	}
	if feeUnits.Int64() >= units {
		return RawTx{}, estimate{}, fmt.Errorf("%w: network fee %s %s is not below the payout's %s", chain.ErrPermanent, est.fee, p.Asset.Code, p.Amount)
	}
	est.sentUnits = units - feeUnits.Int64()
	if est.sentUnits == units {
		return first, est, nil
	}
	r, err := call(est.sentUnits)
	return r, est, err
}

// tokenBalance reads the hot wallet's balanceOf on contract.
func (s *Sender) tokenBalance(ctx context.Context, contract string) (*big.Int, error) {
	param := make([]byte, 32)
	copy(param[12:], s.hotBytes[1:])
	ext, err := s.node.TriggerConstantContract(ctx, TriggerRequest{OwnerAddress: s.hot, ContractAddress: contract,
		FunctionSelector: "balanceOf(address)", Parameter: hex.EncodeToString(param)})
	if err != nil {
		return nil, fmt.Errorf("tron token balance: %w", err)
	}
	if !ext.Result.Result || len(ext.ConstantResult) != 1 {
		return nil, fmt.Errorf("tron token balance: %s %s", ext.Result.Code, nodeMessage(ext.Result.Message))
	}
	b, err := hex.DecodeString(ext.ConstantResult[0])
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("tron token balance: unexpected result %q", ext.ConstantResult[0])
	}
	return new(big.Int).SetBytes(b), nil
}

// returnsTrue reports whether a dry run returned the ABI bool true (a
// transfer that returns nothing, as some tokens do, counts as true).
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

// sign signs raw with the key at HD index (the hot wallet's, or a deposit
// address's for a sweep): a recoverable secp256k1 signature over
// txID = sha256(raw), 65 bytes r‖s‖v with v the recovery id (0 or 1), as
// java-tron's ECKey writes it. It returns the signed Transaction's bytes
// and the txID.
func (s *Sender) sign(raw []byte, index int64) ([]byte, string, error) {
	key, err := s.keys.PrivateKey(domain.ChainTron, index)
	if err != nil {
		return nil, "", fmt.Errorf("tron: key %d: %w", index, err)
	}
	defer key.Zero()
	txid := TxID(raw)
	id, _ := hex.DecodeString(txid)
	ek := key.ToECDSA()
	sig, err := crypto.Sign(id, ek)
	ek.D.SetInt64(0)
	if err != nil {
		return nil, "", fmt.Errorf("tron: sign: %w", err)
	}
	return MarshalTransaction(raw, [][]byte{sig}), txid, nil
}

// record keeps the latest build of a payout in tron_payout_txs.
func (s *Sender) record(ctx context.Context, p chain.PayoutToSend, txid string, est estimate, expirationMs int64) error {
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM tron_payout_txs WHERE payout_id = ?`), p.PayoutID); err != nil {
		return fmt.Errorf("tron payout record: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO tron_payout_txs (payout_id, txid, asset, to_address, amount, network_fee, fee_trx,
		energy, bandwidth_bytes, fee_limit_sun, expiration_ms, built_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		p.PayoutID, txid, p.Asset.Code, p.ToAddress, p.Amount.String(), est.fee.String(), sunString(est.feeTRXSun),
		est.energy, est.bandwidth, est.feeLimitSun, expirationMs, s.cfg.Now().UnixMilli()); err != nil {
		return fmt.Errorf("tron payout record: %w", err)
	}
	return tx.Commit()
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
