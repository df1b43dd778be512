// Package hd derives the gateway's receiving addresses and keys from one
// BIP-39 master seed: Bitcoin native SegWit (P2WPKH, BIP-84
// m/84'/coin'/0'/0/i), Ethereum (BIP-44 m/44'/60'/0'/0/i, EIP-55) and TRON
// (BIP-44 m/44'/195'/0'/0/i, base58check). Nothing here logs or prints a key
// or the seed: Wallet formats as "hd.Wallet{redacted}".
package hd

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"
	"golang.org/x/crypto/sha3"

	"github.com/acceptcryptohere/gateway/domain"
)

// ErrIndex: a derivation index outside 0..2^31-1 (non-hardened).
var ErrIndex = errors.New("hd: derivation index out of range")

// TronVersion is the version byte of TRON's base58check addresses ("T…").
const TronVersion = 0x41

// BIP-32 path constants.
const (
	hardened     = hdkeychain.HardenedKeyStart
	purposeBIP44 = 44
	purposeBIP84 = 84
	coinEthereum = 60
	coinTron     = 195
)

// Wallet holds the external (receive) branch keys of each chain. It is
// immutable and safe for concurrent use.
type Wallet struct {
	btcParams *chaincfg.Params
	// branch keys at m/purpose'/coin'/0'/0: private for PrivateKey, public
	// (neutered) for address derivation.
	priv, pub map[domain.Chain]*hdkeychain.ExtendedKey
	// fast is pub as curve points, for deriving addresses (fastpub.go).
	fast map[domain.Chain]*pubBranch
	// account holds the account-level public keys (m/purpose'/coin'/0'),
	// serialised: what a watch-only wallet is built from.
	account map[domain.Chain]string
}

// NewWallet derives the branch keys from a BIP-39 mnemonic and optional
// passphrase. btcParams selects the Bitcoin network: coin type 0 on mainnet,
// 1 on every test network (testnet, regtest, simnet, signet), as wallets do.
// Errors: ErrInvalidMnemonic.
func NewWallet(mnemonic, passphrase string, btcParams *chaincfg.Params) (*Wallet, error) {
	if btcParams == nil {
		return nil, errors.New("hd: no Bitcoin network parameters")
	}
	seed, err := Seed(mnemonic, passphrase)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	master, err := hdkeychain.NewMaster(seed, btcParams)
	if err != nil {
		return nil, fmt.Errorf("hd: master key: %w", err)
	}
	defer master.Zero()
	btcCoin := uint32(1)
	if btcParams.Net == wire.MainNet {
		btcCoin = 0
	}
	paths := map[domain.Chain][]uint32{
		domain.ChainBitcoin:  {purposeBIP84 + hardened, btcCoin + hardened, hardened},
		domain.ChainEthereum: {purposeBIP44 + hardened, coinEthereum + hardened, hardened},
		domain.ChainTron:     {purposeBIP44 + hardened, coinTron + hardened, hardened},
	}
	w := newWallet(btcParams)
	w.priv = map[domain.Chain]*hdkeychain.ExtendedKey{}
	for chain, path := range paths {
		k := master
		for _, i := range path {
			if k, err = k.Derive(i); err != nil {
				return nil, fmt.Errorf("hd: derive %s account: %w", chain, err)
			}
		}
		acct, err := k.Neuter()
		if err != nil {
			return nil, fmt.Errorf("hd: %s account: %w", chain, err)
		}
		if k, err = k.Derive(0); err != nil {
			return nil, fmt.Errorf("hd: derive %s branch: %w", chain, err)
		}
		w.priv[chain] = k
		if err := w.addAccount(chain, acct); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func newWallet(btcParams *chaincfg.Params) *Wallet {
	return &Wallet{btcParams: btcParams, pub: map[domain.Chain]*hdkeychain.ExtendedKey{},
		fast: map[domain.Chain]*pubBranch{}, account: map[domain.Chain]string{}}
}

// addAccount sets chain's public keys from its account-level public key.
func (w *Wallet) addAccount(chain domain.Chain, acct *hdkeychain.ExtendedKey) error {
	pub, err := acct.Derive(0)
	if err != nil {
		return fmt.Errorf("hd: derive %s branch: %w", chain, err)
	}
	w.pub[chain], w.account[chain] = pub, acct.String()
	if w.fast[chain], err = newPubBranch(pub); err != nil {
		return fmt.Errorf("hd: %s branch: %w", chain, err)
	}
	return nil
}

// Chains are the chains whose keys a wallet holds.
var Chains = []domain.Chain{domain.ChainBitcoin, domain.ChainEthereum, domain.ChainTron}

// AccountKeys are the account-level extended public keys (m/84'/coin'/0'
// for Bitcoin, m/44'/60'/0' and m/44'/195'/0'), serialised with the
// Bitcoin network's version bytes: all a watch-only wallet needs.
func (w *Wallet) AccountKeys() map[domain.Chain]string {
	out := make(map[domain.Chain]string, len(w.account))
	for c, k := range w.account {
		out[c] = k
	}
	return out
}

// ErrWatchOnly: a private key asked of a wallet built from public keys.
var ErrWatchOnly = errors.New("hd: watch-only wallet: it holds no private key (the signer does)")

// NewWatchOnly builds a wallet from AccountKeys' output: it derives the
// same addresses as the seed's wallet and holds no private key
// (PrivateKey fails with ErrWatchOnly). Errors: a missing chain, a key
// that is private, malformed or of another Bitcoin network.
func NewWatchOnly(account map[domain.Chain]string, btcParams *chaincfg.Params) (*Wallet, error) {
	if btcParams == nil {
		return nil, errors.New("hd: no Bitcoin network parameters")
	}
	w := newWallet(btcParams)
	for _, chain := range Chains {
		s, ok := account[chain]
		if !ok {
			return nil, fmt.Errorf("hd: no %s account key", chain)
		}
		k, err := hdkeychain.NewKeyFromString(s)
		if err != nil {
			return nil, fmt.Errorf("hd: %s account key: %w", chain, err)
		}
		if k.IsPrivate() {
			return nil, fmt.Errorf("hd: %s account key is private: a watch-only wallet takes public keys only", chain)
		}
		if !k.IsForNet(btcParams) {
			return nil, fmt.Errorf("hd: %s account key is not for Bitcoin network %s", chain, btcParams.Name)
		}
		if k.Depth() != 3 {
			return nil, fmt.Errorf("hd: %s key is at depth %d, not an account key (3)", chain, k.Depth())
		}
		if err := w.addAccount(chain, k); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func child(branch *hdkeychain.ExtendedKey, chain domain.Chain, index int64) (*hdkeychain.ExtendedKey, error) {
	if branch == nil {
		return nil, fmt.Errorf("hd: unknown chain %q", chain)
	}
	if index < 0 || index >= hardened {
		return nil, fmt.Errorf("%w: %d", ErrIndex, index)
	}
	k, err := branch.Derive(uint32(index))
	if err != nil {
		// Probability about 2^-127 per index; the caller allocates another.
		return nil, fmt.Errorf("hd: %s index %d: %w", chain, index, err)
	}
	return k, nil
}

// Address returns the receive address of chain at index.
// Errors: ErrIndex, and an unknown chain.
func (w *Wallet) Address(chain domain.Chain, index int64) (string, error) {
	branch := w.fast[chain]
	if branch == nil {
		return "", fmt.Errorf("hd: unknown chain %q", chain)
	}
	if index < 0 || index >= hardened {
		return "", fmt.Errorf("%w: %d", ErrIndex, index)
	}
	pub, err := branch.child(uint32(index))
	if err != nil {
		return "", err
	}
	return w.encode(chain, pub)
}

// encode writes a chain's receive address for a public key.
func (w *Wallet) encode(chain domain.Chain, pub *btcec.PublicKey) (string, error) {
	switch chain {
	case domain.ChainBitcoin:
		return BitcoinAddress(pub, w.btcParams)
	case domain.ChainEthereum:
		return EthereumAddress(pub), nil
	case domain.ChainTron:
		return TronAddress(pub), nil
	}
	return "", fmt.Errorf("hd: unknown chain %q", chain)
}

// Deriver gives the index allocator (commands.Deriver) the same addresses as Address, made
// addressBlock consecutive indexes at a time (one field inversion for all
// of them, see pubBranch.children): the allocator hands indexes out in
// order. While a block is used, the next one is derived in the background.
func (w *Wallet) Deriver() func(chain domain.Chain, index int64) (string, error) {
	d := &blockDeriver{w: w, blocks: map[blockKey]*derivedBlock{}}
	return d.address
}

// addressBlock is how many addresses the allocator's deriver makes at once:
// the inversion is shared by 16 and the request that pays for the block
// waits for 16 derivations (about 0.5 ms here), not 64.
const addressBlock = 16

type blockDeriver struct {
	w  *Wallet
	mu sync.Mutex
	// blocks holds, per chain, the block in use and the one after it.
	blocks map[blockKey]*derivedBlock
}

type blockKey struct {
	chain domain.Chain
	from  int64
}

type derivedBlock struct {
	ready chan struct{} // closed once addrs and errs are set
	addrs []string
	errs  []error
}

func (d *blockDeriver) address(chain domain.Chain, index int64) (string, error) {
	branch := d.w.fast[chain]
	if branch == nil {
		return "", fmt.Errorf("hd: unknown chain %q", chain)
	}
	if index < 0 || index >= hardened {
		return "", fmt.Errorf("%w: %d", ErrIndex, index)
	}
	from := index - index%addressBlock
	d.mu.Lock()
	b, ok := d.blocks[blockKey{chain, from}]
	if !ok {
		b = d.start(chain, from)
	}
	// The next block is derived meanwhile, in time the requests leave
	// idle, instead of by the request that first needs it.
	if next := from + addressBlock; next < hardened {
		if _, ok := d.blocks[blockKey{chain, next}]; !ok {
			nb := d.start(chain, next)
			go d.derive(chain, branch, next, nb)
		}
	}
	for k := range d.blocks {
		if k.chain == chain && (k.from < from || k.from > from+addressBlock) {
			delete(d.blocks, k)
		}
	}
	d.mu.Unlock()
	if !ok {
		d.derive(chain, branch, from, b)
	}
	<-b.ready
	return b.addrs[index-from], b.errs[index-from]
}

// start registers a block to be derived; d.mu must be held.
func (d *blockDeriver) start(chain domain.Chain, from int64) *derivedBlock {
	b := &derivedBlock{ready: make(chan struct{})}
	d.blocks[blockKey{chain, from}] = b
	return b
}

func (d *blockDeriver) derive(chain domain.Chain, branch *pubBranch, from int64, b *derivedBlock) {
	n := int(min(addressBlock, hardened-from))
	keys, errs := branch.children(uint32(from), n)
	b.addrs, b.errs = make([]string, n), errs
	for i, k := range keys {
		if errs[i] == nil {
			b.addrs[i], b.errs[i] = d.w.encode(chain, k)
		}
	}
	close(b.ready)
}

// PrivateKey returns the signing key of chain's receive address at index,
// for payouts and sweeps. Callers must not log it.
// Errors: ErrIndex, and an unknown chain.
func (w *Wallet) PrivateKey(chain domain.Chain, index int64) (*btcec.PrivateKey, error) {
	if w.priv == nil {
		return nil, ErrWatchOnly
	}
	k, err := child(w.priv[chain], chain, index)
	if err != nil {
		return nil, err
	}
	return k.ECPrivKey()
}

// BitcoinParams is the network the Bitcoin addresses are for.
func (w *Wallet) BitcoinParams() *chaincfg.Params { return w.btcParams }

// String, GoString, Format and LogValue keep keys out of logs and panics.
func (Wallet) String() string               { return "hd.Wallet{redacted}" }
func (w Wallet) GoString() string           { return w.String() }
func (w Wallet) Format(f fmt.State, _ rune) { fmt.Fprint(f, w.String()) }
func (w Wallet) LogValue() slog.Value       { return slog.StringValue(w.String()) }

var (
	_ fmt.Stringer   = Wallet{}
	_ fmt.Formatter  = (*Wallet)(nil)
	_ slog.LogValuer = (*Wallet)(nil)
)

// BitcoinAddress is the P2WPKH (bech32) address of a public key.
func BitcoinAddress(pub *btcec.PublicKey, params *chaincfg.Params) (string, error) {
	a, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), params)
	if err != nil {
		return "", fmt.Errorf("hd: %w", err)
	}
	return a.EncodeAddress(), nil
}

// ethAccount is the last 20 bytes of keccak256 of the uncompressed key
// without its 0x04 prefix: the account of Ethereum and of TRON.
func ethAccount(pub *btcec.PublicKey) []byte {
	h := sha3.NewLegacyKeccak256()
	h.Write(pub.SerializeUncompressed()[1:])
	return h.Sum(nil)[12:]
}

// EthereumAddress is the EIP-55 checksummed address of a public key.
func EthereumAddress(pub *btcec.PublicKey) string {
	return eip55(ethAccount(pub))
}

// TronAddress is the base58check address (version 0x41, "T…") of a public key.
func TronAddress(pub *btcec.PublicKey) string {
	return base58.CheckEncode(ethAccount(pub), TronVersion)
}

// eip55 writes 20 bytes as 0x-hex with the EIP-55 mixed-case checksum.
func eip55(account []byte) string {
	lower := hex.EncodeToString(account)
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(lower))
	sum := h.Sum(nil)
	var b strings.Builder
	b.WriteString("0x")
	for i, c := range lower {
		nibble := sum[i/2] >> 4
		if i%2 == 1 {
			nibble = sum[i/2] & 0x0f
		}
		if c >= 'a' && nibble >= 8 {
			c -= 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}
