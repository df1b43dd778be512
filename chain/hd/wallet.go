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

// Wallet holds the external (receive) branch keys of each chain, of
// every seed generation the operator has had (docs/operations.md, rotate
// to a new seed): new addresses come from the newest, and the older ones
// still sign for the addresses they derived. It is immutable and safe for
// concurrent use.
type Wallet struct {
	btcParams *chaincfg.Params
	// gens[g] holds generation g's keys; the last is the current one.
	gens []*generation
}

// generation is the keys of one seed.
type generation struct {
	// branch keys at m/purpose'/coin'/0'/0: private for PrivateKey, public
	// (neutered) for address derivation.
	priv, pub map[domain.Chain]*hdkeychain.ExtendedKey
	// fast is pub as curve points, for deriving addresses (fastpub.go).
	fast map[domain.Chain]*pubBranch
	// account holds the account-level public keys (m/purpose'/coin'/0'),
	// serialised: what a watch-only wallet is built from.
	account map[domain.Chain]string
}

// A key number names one key of a wallet: its seed generation times 2^32
// plus its BIP-32 index (below 2^31). Generation 0's key numbers are its
// indexes, so every index recorded before the first rotation (invoices'
// address_index, the senders' hd_index) already names its key.
const generationShift = 32

// KeyNumber is the key number of index in generation.
func KeyNumber(generation int, index int64) int64 {
	return int64(generation)<<generationShift | index
}

// SplitKeyNumber is KeyNumber's inverse. Errors: ErrIndex for a negative
// number or an index at or above 2^31.
func SplitKeyNumber(n int64) (generation int, index int64, err error) {
	generation, index = int(n>>generationShift), n&(1<<generationShift-1)
	if n < 0 || index >= hardened {
		return 0, 0, fmt.Errorf("%w: key number %d", ErrIndex, n)
	}
	return generation, index, nil
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
	g := w.gens[0]
	g.priv = map[domain.Chain]*hdkeychain.ExtendedKey{}
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
		g.priv[chain] = k
		if err := g.addAccount(chain, acct); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// newWallet is a wallet of one generation with no keys yet.
func newWallet(btcParams *chaincfg.Params) *Wallet {
	return &Wallet{btcParams: btcParams, gens: []*generation{{pub: map[domain.Chain]*hdkeychain.ExtendedKey{},
		fast: map[domain.Chain]*pubBranch{}, account: map[domain.Chain]string{}}}}
}

// Join is one wallet of the generations given, oldest first (each a
// wallet of one generation, from NewWallet or NewWatchOnly): generation g
// is gens[g], and the last is the one new addresses come from. Errors: no
// wallet, one of several generations, wallets of other Bitcoin networks,
// a mix of seeds and watch-only keys, or the same seed twice.
func Join(gens ...*Wallet) (*Wallet, error) {
	if len(gens) == 0 {
		return nil, errors.New("hd: no seed generation")
	}
	w := &Wallet{btcParams: gens[0].btcParams}
	seen := map[string]int{}
	for g, x := range gens {
		switch {
		case len(x.gens) != 1:
			return nil, fmt.Errorf("hd: generation %d is a wallet of %d generations, not one", g, len(x.gens))
		case x.btcParams.Name != w.btcParams.Name:
			return nil, fmt.Errorf("hd: generation %d is for Bitcoin %s, generation 0 for %s", g, x.btcParams.Name, w.btcParams.Name)
		case (x.gens[0].priv == nil) != (gens[0].gens[0].priv == nil):
			return nil, errors.New("hd: generations mix seeds and watch-only keys")
		}
		eth := x.gens[0].account[domain.ChainEthereum]
		if prev, ok := seen[eth]; ok {
			return nil, fmt.Errorf("hd: generations %d and %d are the same seed", prev, g)
		}
		seen[eth] = g
		w.gens = append(w.gens, x.gens[0])
	}
	return w, nil
}

// Generation is the current generation: the one new addresses come from.
func (w *Wallet) Generation() int { return len(w.gens) - 1 }

// Current is the key number of index in the current generation.
func (w *Wallet) Current(index int64) int64 { return KeyNumber(w.Generation(), index) }

// Retired are the key numbers of index in every older generation, oldest
// first: where a hot wallet at index was before each rotation.
func (w *Wallet) Retired(index int64) []int64 {
	var out []int64
	for g := range w.Generation() {
		out = append(out, KeyNumber(g, index))
	}
	return out
}

// addAccount sets chain's public keys from its account-level public key.
func (g *generation) addAccount(chain domain.Chain, acct *hdkeychain.ExtendedKey) error {
	pub, err := acct.Derive(0)
	if err != nil {
		return fmt.Errorf("hd: derive %s branch: %w", chain, err)
	}
	g.pub[chain], g.account[chain] = pub, acct.String()
	if g.fast[chain], err = newPubBranch(pub); err != nil {
		return fmt.Errorf("hd: %s branch: %w", chain, err)
	}
	return nil
}

// Chains are the chains whose keys a wallet holds.
var Chains = []domain.Chain{domain.ChainBitcoin, domain.ChainEthereum, domain.ChainTron}

// AccountKeys are generation 0's account-level extended public keys
// (m/84'/coin'/0' for Bitcoin, m/44'/60'/0' and m/44'/195'/0'), serialised
// with the Bitcoin network's version bytes: all a watch-only wallet needs.
func (w *Wallet) AccountKeys() map[domain.Chain]string { return w.GenerationKeys()[0] }

// GenerationKeys are every generation's AccountKeys, oldest first.
func (w *Wallet) GenerationKeys() []map[domain.Chain]string {
	out := make([]map[domain.Chain]string, len(w.gens))
	for g, gen := range w.gens {
		out[g] = make(map[domain.Chain]string, len(gen.account))
		for c, k := range gen.account {
			out[g][c] = k
		}
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
		if err := w.gens[0].addAccount(chain, k); err != nil {
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

// generation is the keys of key number n and its index.
// Errors: ErrIndex, and a generation the wallet does not hold.
func (w *Wallet) generation(n int64) (*generation, int64, error) {
	g, index, err := SplitKeyNumber(n)
	if err != nil {
		return nil, 0, err
	}
	if g >= len(w.gens) {
		return nil, 0, fmt.Errorf("hd: key number %d is of seed generation %d; this wallet holds generations 0 to %d", n, g, len(w.gens)-1)
	}
	return w.gens[g], index, nil
}

// Address returns the receive address of chain at key number n (in
// generation 0, the BIP-32 index). Errors: ErrIndex, a generation the
// wallet does not hold, and an unknown chain.
func (w *Wallet) Address(chain domain.Chain, n int64) (string, error) {
	gen, index, err := w.generation(n)
	if err != nil {
		return "", err
	}
	branch := gen.fast[chain]
	if branch == nil {
		return "", fmt.Errorf("hd: unknown chain %q", chain)
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

// Deriver gives the index allocator (commands.Deriver) the same addresses as Address (of key numbers), made
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
	from  int64 // a key number
}

type derivedBlock struct {
	ready chan struct{} // closed once addrs and errs are set
	addrs []string
	errs  []error
}

func (d *blockDeriver) address(chain domain.Chain, n int64) (string, error) {
	gen, index, err := d.w.generation(n)
	if err != nil {
		return "", err
	}
	branch := gen.fast[chain]
	if branch == nil {
		return "", fmt.Errorf("hd: unknown chain %q", chain)
	}
	// Blocks are keyed by key number, which is the index in generation 0
	// and the index plus a multiple of the block size in the others.
	from := n - index%addressBlock
	d.mu.Lock()
	b, ok := d.blocks[blockKey{chain, from}]
	if !ok {
		b = d.start(chain, from)
	}
	// The next block is derived meanwhile, in time the requests leave
	// idle, instead of by the request that first needs it.
	if next := from + addressBlock; index-index%addressBlock+addressBlock < hardened { // the next block's first index
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
	return b.addrs[n-from], b.errs[n-from]
}

// start registers a block to be derived; d.mu must be held.
func (d *blockDeriver) start(chain domain.Chain, from int64) *derivedBlock {
	b := &derivedBlock{ready: make(chan struct{})}
	d.blocks[blockKey{chain, from}] = b
	return b
}

// derive fills b with the addresses from key number from on.
func (d *blockDeriver) derive(chain domain.Chain, branch *pubBranch, from int64, b *derivedBlock) {
	_, index, _ := SplitKeyNumber(from)
	n := int(min(addressBlock, hardened-index))
	keys, errs := branch.children(uint32(index), n)
	b.addrs, b.errs = make([]string, n), errs
	for i, k := range keys {
		if errs[i] == nil {
			b.addrs[i], b.errs[i] = d.w.encode(chain, k)
		}
	}
	close(b.ready)
}

// PrivateKey returns the signing key of chain's receive address at key
// number n, for payouts and sweeps. Callers must not log it.
// Errors: ErrWatchOnly, ErrIndex, a generation the wallet does not hold,
// and an unknown chain.
func (w *Wallet) PrivateKey(chain domain.Chain, n int64) (*btcec.PrivateKey, error) {
	gen, index, err := w.generation(n)
	if err != nil {
		return nil, err
	}
	if gen.priv == nil {
		return nil, ErrWatchOnly
	}
	k, err := child(gen.priv[chain], chain, index)
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
