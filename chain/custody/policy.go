package custody

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// Wallet is the seed's wallet (*hd.Wallet).
type Wallet interface {
	KeySource
	Address(chain domain.Chain, index int64) (string, error)
}

// StreamReader reads the event log (an eventstore.Store opened read-only).
type StreamReader interface {
	ReadStream(ctx context.Context, stream string, from int64, max int) ([]eventstore.RecordedEvent, error)
}

// Limit caps what an asset's payouts may take per rolling hour and day
// without an approval; a zero amount is no cap.
type Limit struct{ Hour, Day domain.Amount }

// PolicyConfig is what the signer checks with.
type PolicyConfig struct {
	Wallet Wallet
	Log    StreamReader
	Record *Record
	// Assets are the gateway's, with the token contracts it is configured with.
	Assets domain.Assets
	Limits map[string]Limit
	// EthereumHotIndex is the hot wallet's key number (eth.DefaultHotWalletIndex
	// in the current seed generation, hd.Wallet.Current). Every index
	// here is a key number: an older generation's addresses are still
	// signed for, and may sweep to the hot wallet.
	EthereumHotIndex int64
	// BitcoinParams is the network payout addresses are decoded on.
	BitcoinParams *chaincfg.Params
	// TronRead reads TRON transactions (tron.ReadTransfer); nil: none
	// are signed. TronHotIndex is TRON's hot wallet index.
	TronRead     TronReader
	TronHotIndex int64
	Now          func() time.Time
	Logger       *slog.Logger
}

// Policy signs only what the log asks for: a payout that exists, still
// holds its reservation and has nothing signed for it yet, to the
// destination and for the amount its request names, within the limits or
// approved; and internal moves (sweep, top-up, void) between the
// gateway's own addresses. One request at a time: the checks and the
// record are one step.
type Policy struct {
	cfg   PolicyConfig
	local Local
	mu    sync.Mutex
}

// NewPolicy builds the signer's policy.
func NewPolicy(cfg PolicyConfig) *Policy {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Policy{cfg: cfg, local: Local{Keys: cfg.Wallet}}
}

// Sign implements Signer.
func (p *Policy) Sign(ctx context.Context, req Request) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch req.Chain {
	case domain.ChainEthereum:
		return p.signEthereum(ctx, req)
	case domain.ChainBitcoin:
		return p.signBitcoin(ctx, req)
	case domain.ChainTron:
		return p.signTron(ctx, req)
	}
	return nil, refused("this signer does not sign %s transactions yet", req.Chain)
}

func (p *Policy) signEthereum(ctx context.Context, req Request) ([]byte, error) {
	tx, err := decodeEthereum(req.Unsigned)
	if err != nil {
		return nil, err
	}
	t, err := transferOf(tx)
	if err != nil {
		return nil, err
	}
	hotIndex := p.cfg.EthereumHotIndex
	hot, err := p.ethAddress(hotIndex)
	if err != nil {
		return nil, err
	}
	sign := func() ([]byte, string, error) {
		key, err := p.cfg.Wallet.PrivateKey(domain.ChainEthereum, req.FromIndex)
		if err != nil {
			return nil, "", err
		}
		raw, err := signEthereum(key, tx)
		if err != nil {
			return nil, "", err
		}
		var signed types.Transaction
		if err := signed.UnmarshalBinary(raw); err != nil {
			return nil, "", err
		}
		return raw, signed.Hash().Hex(), nil
	}
	if req.Purpose == PurposePayout {
		if req.FromIndex != hotIndex {
			return nil, refused("a payout is paid from the hot wallet (index %d), not index %d", hotIndex, req.FromIndex)
		}
		return p.payout(ctx, req, func(po domain.PayoutRequested, asset domain.Asset) error {
			return checkEthereumPayout(tx, t, po, asset)
		}, sign)
	}
	if err := p.checkEthereumInternal(req, t, hot); err != nil {
		return nil, err
	}
	raw, txid, err := sign()
	if err != nil {
		return nil, err
	}
	return raw, p.cfg.Record.append(ctx, Signature{Chain: req.Chain, Purpose: req.Purpose, PayoutID: req.PayoutID, Asset: req.Asset,
		FromIndex: req.FromIndex, TxID: txid, Raw: raw, SignedAt: p.cfg.Now()})
}

func (p *Policy) ethAddress(index int64) (common.Address, error) {
	a, err := p.cfg.Wallet.Address(domain.ChainEthereum, index)
	if err != nil {
		return common.Address{}, refused("index %d: %v", index, err)
	}
	return common.HexToAddress(a), nil
}

// checkEthereumInternal holds a sweep, top-up or void to the gateway's own
// addresses: a sweep sends a deposit address's ETH or configured token to
// the hot wallet, a top-up sends the hot wallet's ETH to a deposit
// address, a void sends 0 from the hot wallet to itself.
func (p *Policy) checkEthereumInternal(req Request, t ethereumTransfer, hot common.Address) error {
	hotIndex := p.cfg.EthereumHotIndex
	switch req.Purpose {
	case PurposeSweep:
		if req.FromIndex == hotIndex || t.to != hot {
			return refused("a sweep goes from a deposit address to the hot wallet %s, not to %s", hot.Hex(), t.to.Hex())
		}
		if t.contract != nil && !p.knownContract(domain.ChainEthereum, t.contract.Hex()) {
			return refused("a sweep moves ETH or a configured token, not the contract %s", t.contract.Hex())
		}
	case PurposeTopUp:
		to, err := p.ethAddress(req.ToIndex)
		if err != nil {
			return err
		}
		if req.FromIndex != hotIndex || req.ToIndex == hotIndex || t.contract != nil || t.to != to {
			return refused("a top-up sends ETH from the hot wallet to deposit address %d (%s), not to %s", req.ToIndex, to.Hex(), t.to.Hex())
		}
	case PurposeVoid:
		if req.FromIndex != hotIndex || t.to != hot || t.contract != nil || t.amount.Sign() != 0 {
			return refused("a void sends 0 ETH from the hot wallet to itself")
		}
	default:
		return refused("unknown purpose %q", req.Purpose)
	}
	return nil
}

// knownContract tells whether c is the contract of one of chain's assets.
func (p *Policy) knownContract(chain domain.Chain, c string) bool {
	for _, a := range p.cfg.Assets.List() {
		if a.Chain != chain || a.Contract == "" {
			continue
		}
		if a.Contract == c || (chain == domain.ChainTron && tronBase58(a.Contract) == c) || (chain == domain.ChainEthereum && common.HexToAddress(a.Contract) == common.HexToAddress(c)) {
			return true
		}
	}
	return false
}

// checkEthereumPayout holds a payout's transaction to its request: to the
// requested address (or through the asset's contract to it), for exactly
// the requested amount: a refund sends the amount (the fee on top), an
// ETH payout the amount less the most gas it may pay (gas × fee cap), a
// token payout the amount of the token.
func checkEthereumPayout(tx *types.Transaction, t ethereumTransfer, po domain.PayoutRequested, asset domain.Asset) error {
	if !common.IsHexAddress(po.ToAddress) || t.to != common.HexToAddress(po.ToAddress) {
		return refused("payout %s goes to %s, the transaction to %s", po.PayoutID, po.ToAddress, t.to.Hex())
	}
	units, err := po.Amount.BaseUnits(asset.Decimals)
	if err != nil {
		return refused("payout %s amount %s: %v", po.PayoutID, po.Amount, err)
	}
	if asset.Contract == "" {
		if t.contract != nil {
			return refused("payout %s is of ETH, the transaction calls %s", po.PayoutID, t.contract.Hex())
		}
		want := units
		if po.Kind != domain.PayoutKindRefund {
			maxFee := new(big.Int).Mul(new(big.Int).SetUint64(tx.Gas()), tx.GasFeeCap())
			want = new(big.Int).Sub(units, maxFee)
		}
		if t.amount.Cmp(want) != 0 {
			return refused("payout %s sends %s wei (amount %s less its fee), the transaction %s wei", po.PayoutID, want, po.Amount, t.amount)
		}
		return nil
	}
	if t.contract == nil || *t.contract != common.HexToAddress(asset.Contract) {
		return refused("payout %s is of %s (contract %s), the transaction is not a transfer through it", po.PayoutID, asset.Code, asset.Contract)
	}
	if t.amount.Cmp(units) != 0 {
		return refused("payout %s sends %s base units of %s, the transaction %s", po.PayoutID, units, asset.Code, t.amount)
	}
	return nil
}

// payout signs a payout's transaction once. A payout signed before gets
// that same transaction back, whatever was asked this time (a sender that
// crashed before storing it asks again, perhaps with other fees): never a
// second transaction. Otherwise the log must hold the payout's request,
// with its reservation not released and nothing signed elsewhere, check
// must pass, and the limits hold or an operator approved it.
func (p *Policy) payout(ctx context.Context, req Request, check func(domain.PayoutRequested, domain.Asset) error,
	sign func() ([]byte, string, error)) ([]byte, error) {
	prior, ok, err := p.cfg.Record.payout(ctx, req.PayoutID)
	if err != nil {
		return nil, err
	}
	if ok {
		p.cfg.Logger.Info("payout signed before: its transaction again", "payout_id", req.PayoutID, "txid", prior.TxID)
		return prior.Raw, nil
	}
	po, err := p.findPayout(ctx, req)
	if err != nil {
		return nil, err
	}
	asset, err := p.cfg.Assets.Lookup(po.Asset)
	if err != nil || asset.Chain != req.Chain {
		return nil, refused("payout %s is of %s, which this signer does not sign on %s", po.PayoutID, po.Asset, req.Chain)
	}
	if err := check(po, asset); err != nil {
		return nil, err
	}
	if err := p.withinLimits(ctx, po); err != nil {
		return nil, err
	}
	raw, txid, err := sign()
	if err != nil {
		return nil, err
	}
	if err := p.cfg.Record.append(ctx, Signature{Chain: req.Chain, Purpose: PurposePayout, PayoutID: po.PayoutID, Asset: po.Asset, Amount: po.Amount,
		FromIndex: req.FromIndex, TxID: txid, Raw: raw, SignedAt: p.cfg.Now()}); err != nil {
		return nil, fmt.Errorf("custody: record: %w", err)
	}
	p.cfg.Logger.Info("payout signed", "payout_id", po.PayoutID, "asset", po.Asset, "amount", po.Amount.String(), "to", po.ToAddress, "txid", txid)
	return raw, nil
}

// findPayout reads the payout's request from the merchant's funds stream
// and its life from its own stream.
func (p *Policy) findPayout(ctx context.Context, req Request) (domain.PayoutRequested, error) {
	if req.PayoutID == "" || req.MerchantID == "" || req.Asset == "" {
		return domain.PayoutRequested{}, refused("a payout request names the payout, its merchant and its asset")
	}
	stream := domain.FundsStream(req.MerchantID, req.Asset)
	po, err := p.requestAt(ctx, stream, req)
	if err != nil {
		return domain.PayoutRequested{}, err
	}
	if po == nil {
		err = readStream(ctx, p.cfg.Log, stream, func(e domain.Event) bool {
			if r, ok := e.(domain.PayoutRequested); ok && r.PayoutID == req.PayoutID {
				po = &r
				return false
			}
			return true
		})
		if err != nil {
			return domain.PayoutRequested{}, err
		}
	}
	if po == nil {
		return domain.PayoutRequested{}, refused("the log holds no payout %s of merchant %s in %s", req.PayoutID, req.MerchantID, req.Asset)
	}
	var ended string
	err = readStream(ctx, p.cfg.Log, domain.PayoutStream(req.PayoutID), func(e domain.Event) bool {
		switch e := e.(type) {
		case domain.PayoutFailed:
			ended = "failed: its funds are no longer reserved"
		case domain.PayoutCanceled:
			ended = "canceled: its funds are no longer reserved"
		case domain.PayoutSigned:
			ended = "signed already, as " + e.TxID + ", and not by this signer"
		}
		return ended == ""
	})
	if err != nil {
		return domain.PayoutRequested{}, err
	}
	if ended != "" {
		return domain.PayoutRequested{}, refused("payout %s %s", req.PayoutID, ended)
	}
	return *po, nil
}

// requestAt is the payout's request at req.FundsVersion of stream, or nil
// when the request names no version or another event is there.
func (p *Policy) requestAt(ctx context.Context, stream string, req Request) (*domain.PayoutRequested, error) {
	if req.FundsVersion == nil || *req.FundsVersion < 0 {
		return nil, nil
	}
	v := *req.FundsVersion
	evs, err := p.cfg.Log.ReadStream(ctx, stream, v, 1)
	if err != nil {
		return nil, fmt.Errorf("custody: read %s: %w", stream, err)
	}
	if len(evs) == 1 && evs[0].Version == v {
		e, err := domain.DecodeStored(evs[0].Type, evs[0].Data, evs[0].Metadata)
		if err != nil {
			return nil, fmt.Errorf("custody: %s event %d: %w", stream, v, err)
		}
		if r, ok := e.(domain.PayoutRequested); ok && r.PayoutID == req.PayoutID {
			return &r, nil
		}
	}
	p.cfg.Logger.Warn("custody: the request's funds version is not its payout's request; reading the stream", "payout_id", req.PayoutID,
		"stream", stream, "version", v)
	return nil, nil
}

// readStream decodes a stream's events in order until each returns false.
func readStream(ctx context.Context, log StreamReader, stream string, each func(domain.Event) bool) error {
	const page = 500
	for from := int64(0); ; {
		evs, err := log.ReadStream(ctx, stream, from, page)
		if err != nil {
			return fmt.Errorf("custody: read %s: %w", stream, err)
		}
		for _, ev := range evs {
			e, err := domain.DecodeStored(ev.Type, ev.Data, ev.Metadata)
			if err != nil {
				return fmt.Errorf("custody: %s event %d: %w", stream, ev.Version, err)
			}
			if !each(e) {
				return nil
			}
			from = ev.Version + 1
		}
		if len(evs) < page {
			return nil
		}
	}
}

// withinLimits holds a payout that would take its asset past the hourly
// or daily limit, unless an operator approved it.
func (p *Policy) withinLimits(ctx context.Context, po domain.PayoutRequested) error {
	limit, ok := p.cfg.Limits[po.Asset]
	if !ok {
		return nil
	}
	if approved, err := p.cfg.Record.approved(ctx, po.PayoutID); err != nil || approved {
		return err
	}
	now := p.cfg.Now()
	for _, w := range []struct {
		name, per string
		cap       domain.Amount
		since     time.Time
	}{{"hourly", "hour", limit.Hour, now.Add(-time.Hour)}, {"daily", "day", limit.Day, now.Add(-24 * time.Hour)}} {
		if !w.cap.IsPositive() {
			continue
		}
		signed, err := p.cfg.Record.signedSince(ctx, po.Asset, w.since)
		if err != nil {
			return err
		}
		if signed.Add(po.Amount).Cmp(w.cap) <= 0 {
			continue
		}
		reason := fmt.Sprintf("%s limit of %s %s: %s signed in the last %s, this payout %s; approve it with `picd signer approve %s`",
			w.name, w.cap, po.Asset, signed, w.per, po.Amount, po.PayoutID)
		if err := p.cfg.Record.hold(ctx, Held{PayoutID: po.PayoutID, MerchantID: po.MerchantID, Asset: po.Asset, Amount: po.Amount,
			ToAddress: po.ToAddress, Reason: reason, HeldAt: now}); err != nil {
			return err
		}
		p.cfg.Logger.Warn("payout held at a limit", "payout_id", po.PayoutID, "reason", reason)
		return fmt.Errorf("%w: %s", ErrHeld, reason)
	}
	return nil
}
