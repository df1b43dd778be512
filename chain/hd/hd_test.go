package hd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/tyler-smith/go-bip39"

	"github.com/acceptcryptohere/gateway/domain"
)

const abandon = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

// TestWordList: the English list go-bip39 encodes with is the BIP-39 one
// (the SHA-256 of bip-0039/english.txt, one word a line).
func TestWordList(t *testing.T) {
	words := bip39.GetWordList()
	sum := sha256.Sum256([]byte(strings.Join(words, "\n") + "\n"))
	if got := hex.EncodeToString(sum[:]); got != "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda" {
		t.Fatalf("english word list sha256 %s", got)
	}
	distinct := map[string]bool{}
	for _, w := range words {
		distinct[w] = true
	}
	if len(words) != 2048 || len(distinct) != 2048 {
		t.Fatalf("%d words, %d distinct", len(words), len(distinct))
	}
}

// TestBIP39TrezorVectors checks every English vector of the reference
// implementation (trezor/python-mnemonic vectors.json, copied to testdata):
// entropy to mnemonic, the mnemonic read back in any case and spacing, the
// seed under the passphrase "TREZOR", and the BIP-32 master key of that seed.
func TestBIP39TrezorVectors(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "bip39_english_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vectors [][4]string
	if err := json.Unmarshal(body, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) != 24 {
		t.Fatalf("%d vectors, want the 24 English ones", len(vectors))
	}
	for _, v := range vectors {
		entropy, err := hex.DecodeString(v[0])
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewMnemonic(entropy)
		if err != nil || m != v[1] {
			t.Fatalf("NewMnemonic(%s) = %q, %v; want %q", v[0], m, err, v[1])
		}
		if n, err := NormalizeMnemonic("  " + strings.ToUpper(strings.ReplaceAll(m, " ", " \t ")) + "\n"); err != nil || n != m {
			t.Fatalf("NormalizeMnemonic of %q = %q, %v", m, n, err)
		}
		seed, err := Seed(m, "TREZOR")
		if err != nil || hex.EncodeToString(seed) != v[2] {
			t.Fatalf("seed of %q = %x, %v; want %s", m, seed, err, v[2])
		}
		master, err := hdkeychain.NewMaster(seed, &chaincfg.MainNetParams)
		if err != nil || master.String() != v[3] {
			t.Fatalf("master key of %q = %v, %v; want %s", m, master, err, v[3])
		}
	}
}

// BIP-39 reference vectors (entropy → mnemonic; seed with passphrase "TREZOR").
// TestBIP39TrezorVectors has them all; these stay as they were written.
func TestBIP39Vectors(t *testing.T) {
	for _, v := range []struct{ entropy, mnemonic, seed string }{
		{"00000000000000000000000000000000", abandon,
			"c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04"},
		{"7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f", "legal winner thank year wave sausage worth useful legal winner thank yellow",
			"2e8905819b8723fe2c1d161860e5ee1830318dbf49a83bd451cfb8440c28bd6fa457fe1296106559a3c80937a1c1069be3a3a5bd381ee6260e8d9739fce1f607"},
		{"8080808080808080808080808080808080808080808080808080808080808080",
			"letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic bless", ""},
		{"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", strings.Repeat("zoo ", 23) + "vote", ""},
	} {
		entropy, _ := hex.DecodeString(v.entropy)
		m, err := NewMnemonic(entropy)
		if err != nil || m != v.mnemonic {
			t.Fatalf("NewMnemonic(%s) = %q, %v", v.entropy, m, err)
		}
		if n, err := NormalizeMnemonic("  " + strings.ToUpper(m) + "\n"); err != nil || n != m {
			t.Fatalf("NormalizeMnemonic = %q, %v", n, err)
		}
		if v.seed != "" {
			seed, err := Seed(m, "TREZOR")
			if err != nil || hex.EncodeToString(seed) != v.seed {
				t.Fatalf("seed of %q = %x, %v", m, seed, err)
			}
		}
	}
}

func TestMnemonicRejects(t *testing.T) {
	for _, m := range []string{
		"",
		"abandon abandon abandon",
		strings.Repeat("abandon ", 12), // bad checksum
		strings.Replace(abandon, "about", "abou", 1), // not a word
		strings.Replace(abandon, "about", "zoo", 1),  // checksum
		abandon + " abandon abandon abandon",         // 15 words, bad checksum
	} {
		if _, err := NormalizeMnemonic(m); !errors.Is(err, ErrInvalidMnemonic) {
			t.Errorf("NormalizeMnemonic(%q) = %v, want ErrInvalidMnemonic", m, err)
		}
	}
	m, err := GenerateMnemonic(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil || len(strings.Fields(m)) != 24 {
		t.Fatalf("GenerateMnemonic = %q, %v", m, err)
	}
	if _, err := NormalizeMnemonic(m); err != nil {
		t.Fatal(err)
	}
}

// Public vectors for the "abandon … about" mnemonic: BIP-84's own test
// vector, and the BIP-44 Ethereum and TRON addresses every wallet shows.
func TestAddressVectors(t *testing.T) {
	w, err := NewWallet(abandon, "", &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		chain domain.Chain
		index int64
		want  string
	}{
		{domain.ChainBitcoin, 0, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"},
		{domain.ChainBitcoin, 1, "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"},
		{domain.ChainEthereum, 0, "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"},
		{domain.ChainEthereum, 1, "0x6Fac4D18c912343BF86fa7049364Dd4E424Ab9C0"},
		{domain.ChainTron, 0, "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"},
		{domain.ChainTron, 1, "TSeJkUh4Qv67VNFwY8LaAxERygNdy6NQZK"},
	} {
		got, err := w.Deriver()(v.chain, v.index)
		if err != nil || got != v.want {
			t.Errorf("%s/%d = %s, %v; want %s", v.chain, v.index, got, err, v.want)
		}
		if err := ValidateAddress(v.chain, got, &chaincfg.MainNetParams); err != nil {
			t.Errorf("own address %s invalid: %v", got, err)
		}
		// The private key signs for the address derived from the public branch.
		k, err := w.PrivateKey(v.chain, v.index)
		if err != nil {
			t.Fatal(err)
		}
		var again string
		switch v.chain {
		case domain.ChainBitcoin:
			again, _ = BitcoinAddress(k.PubKey(), &chaincfg.MainNetParams)
		case domain.ChainEthereum:
			again = EthereumAddress(k.PubKey())
		case domain.ChainTron:
			again = TronAddress(k.PubKey())
		}
		if again != v.want {
			t.Errorf("%s/%d: private key gives %s", v.chain, v.index, again)
		}
	}
	for _, bad := range []int64{-1, 1 << 31} {
		if _, err := w.Address(domain.ChainBitcoin, bad); !errors.Is(err, ErrIndex) {
			t.Errorf("index %d: %v", bad, err)
		}
	}
	if _, err := w.Address("dogecoin", 0); err == nil {
		t.Error("unknown chain derived an address")
	}
}

func TestTestNetworksUseCoinType1(t *testing.T) {
	reg, err := NewWallet(abandon, "", &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	sim, _ := NewWallet(abandon, "", &chaincfg.SimNetParams)
	a, _ := reg.Address(domain.ChainBitcoin, 0)
	b, _ := sim.Address(domain.ChainBitcoin, 0)
	if !strings.HasPrefix(a, "bcrt1q") || !strings.HasPrefix(b, "sb1q") {
		t.Fatalf("regtest %s, simnet %s", a, b)
	}
	// Same key (m/84'/1'/0'/0/0) on both test networks, different encodings.
	ka, _ := reg.PrivateKey(domain.ChainBitcoin, 0)
	kb, _ := sim.PrivateKey(domain.ChainBitcoin, 0)
	if !ka.Key.Equals(&kb.Key) {
		t.Fatal("regtest and simnet derive different keys")
	}
	if err := ValidateAddress(domain.ChainBitcoin, a, &chaincfg.RegressionNetParams); err != nil {
		t.Fatal(err)
	}
	if err := ValidateAddress(domain.ChainBitcoin, a, &chaincfg.MainNetParams); !errors.Is(err, domain.ErrValidation) {
		t.Fatalf("regtest address accepted on mainnet: %v", err)
	}
	if w, _ := NewWallet(abandon, "passphrase", &chaincfg.RegressionNetParams); w != nil {
		if c, _ := w.Address(domain.ChainBitcoin, 0); c == a {
			t.Fatal("the passphrase changed nothing")
		}
	}
}

func TestValidateAddress(t *testing.T) {
	main := &chaincfg.MainNetParams
	for _, v := range []struct {
		chain domain.Chain
		addr  string
		ok    bool
	}{
		{domain.ChainBitcoin, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", true},
		{domain.ChainBitcoin, "BC1QCR8TE4KR609GCAWUTMRZA0J4XV80JY8Z306FYU", true},
		{domain.ChainBitcoin, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyv", false}, // checksum
		{domain.ChainBitcoin, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", true},
		{domain.ChainBitcoin, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", true},
		{domain.ChainBitcoin, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", false},
		{domain.ChainBitcoin, "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", false}, // testnet
		{domain.ChainBitcoin, " bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", false},
		{domain.ChainBitcoin, "0x9858EfFD232B4033E47d90003D41EC34EcaEda94", false},
		// EIP-55's own examples, then broken case, all-lower, all-upper, junk.
		{domain.ChainEthereum, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", true},
		{domain.ChainEthereum, "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", true},
		{domain.ChainEthereum, "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", true},
		{domain.ChainEthereum, "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb", true},
		{domain.ChainEthereum, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", false},
		{domain.ChainEthereum, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", true},
		{domain.ChainEthereum, "0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED", true},
		{domain.ChainEthereum, "0x0000000000000000000000000000000000000000", false},
		{domain.ChainEthereum, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", false},
		{domain.ChainEthereum, "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed00", false},
		{domain.ChainEthereum, "0xgaAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", false},
		{domain.ChainTron, "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH", true},
		{domain.ChainTron, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", true},
		{domain.ChainTron, "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdJ", false},
		{domain.ChainTron, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", false},
		{"dogecoin", "D8vFz4p1L37jdg47HXKtSHA5uYLYxbGgPD", false},
	} {
		err := ValidateAddress(v.chain, v.addr, main)
		if (err == nil) != v.ok {
			t.Errorf("ValidateAddress(%s, %q) = %v", v.chain, v.addr, err)
		}
		if err != nil && !errors.Is(err, domain.ErrValidation) {
			t.Errorf("%q: %v is not ErrValidation", v.addr, err)
		}
	}
	if err := AddressCheck(main)(domain.ChainTron, "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"); err != nil {
		t.Fatal(err)
	}
}

func TestWalletNeverPrintsKeys(t *testing.T) {
	w, err := NewWallet(abandon, "", &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("wallet", "w", w, "v", *w)
	out := fmt.Sprintf("%v %+v %#v %s %q %x %d", w, w, w, *w, w, w, *w) + fmt.Sprint(w, *w) + logged.String()
	for _, secret := range []string{"xprv", "xpub", "tprv", "abandon", "priv"} {
		if strings.Contains(out, secret) {
			t.Fatalf("printed wallet shows %q: %s", secret, out)
		}
	}
	if !strings.Contains(out, "redacted") {
		t.Fatalf("unexpected output %s", out)
	}
}

func TestLoadOrCreateMnemonic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secrets", "deep", "mnemonic")
	m, created, err := LoadOrCreateMnemonic(path, "")
	if err != nil || !created || len(strings.Fields(m)) != 24 {
		t.Fatalf("first start: %v %v %d words", created, err, len(strings.Fields(m)))
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, %v", fi.Mode(), err)
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", di.Mode())
	}
	again, created, err := LoadOrCreateMnemonic(path, "")
	if err != nil || created || again != m {
		t.Fatalf("restart: created=%v err=%v same=%v", created, err, again == m)
	}
	fromEnv, created, err := LoadOrCreateMnemonic(path, "  "+abandon+" ")
	if err != nil || created || fromEnv != abandon {
		t.Fatalf("env: %q %v %v", fromEnv, created, err)
	}
	if _, _, err := LoadOrCreateMnemonic(path, "abandon about"); !errors.Is(err, ErrInvalidMnemonic) {
		t.Fatalf("bad env mnemonic: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("not a mnemonic"), 0o600)
	if _, _, err := LoadOrCreateMnemonic(bad, ""); !errors.Is(err, ErrInvalidMnemonic) || strings.Contains(err.Error(), "not a mnemonic") {
		t.Fatalf("bad file: %v", err)
	}
	if _, _, err := LoadOrCreateMnemonic("", ""); err == nil {
		t.Fatal("no source, no error")
	}
}

// The fast public derivation gives exactly hdkeychain's keys.
func TestFastDerivationMatchesHDKeychain(t *testing.T) {
	w, err := NewWallet("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about", "", &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []domain.Chain{domain.ChainBitcoin, domain.ChainEthereum, domain.ChainTron} {
		for i := int64(0); i < 300; i += 7 {
			k, err := child(w.gens[0].pub[c], c, i)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := k.ECPubKey()
			got, err := w.gens[0].fast[c].child(uint32(i))
			if err != nil {
				t.Fatal(err)
			}
			if !got.IsEqual(want) {
				t.Fatalf("%s index %d: fast derivation differs", c, i)
			}
		}
	}
}

func BenchmarkAddress(b *testing.B) {
	w, _ := NewWallet("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about", "", &chaincfg.MainNetParams)
	for i := 0; i < b.N; i++ {
		if _, err := w.Address(domain.ChainEthereum, int64(i%100000)); err != nil {
			b.Fatal(err)
		}
	}
}

// The allocator's block deriver gives exactly Address's addresses, in any
// order of asking, across block edges and chains.
func TestDeriverMatchesAddress(t *testing.T) {
	w, err := NewWallet(abandon, "", &chaincfg.TestNet3Params)
	if err != nil {
		t.Fatal(err)
	}
	derive := w.Deriver()
	indexes := []int64{0, 1, 15, 16, 17, 5, 100, 99, 1000, 31, 32, 2, hardened - 1, hardened - 2, 3}
	for _, c := range []domain.Chain{domain.ChainBitcoin, domain.ChainEthereum, domain.ChainTron} {
		for _, i := range indexes {
			want, err := w.Address(c, i)
			if err != nil {
				t.Fatal(err)
			}
			got, err := derive(c, i)
			if err != nil || got != want {
				t.Fatalf("%s index %d: deriver %q %v, Address %q", c, i, got, err, want)
			}
		}
	}
	// Concurrent callers walking the indexes in order, as the allocator's
	// requests do, while the next blocks are derived in the background.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(2000 + g); i < 2400; i += 8 {
				got, err := derive(domain.ChainEthereum, i)
				want, _ := w.Address(domain.ChainEthereum, i)
				if err != nil || got != want {
					errs <- fmt.Errorf("index %d: %q %v, want %q", i, got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := derive(domain.ChainEthereum, hardened); !errors.Is(err, ErrIndex) {
		t.Fatalf("hardened index: %v", err)
	}
	if _, err := derive("DOGE", 1); err == nil {
		t.Fatal("unknown chain derived")
	}
}

func BenchmarkDeriver(b *testing.B) {
	w, _ := NewWallet(abandon, "", &chaincfg.MainNetParams)
	derive := w.Deriver()
	for i := 0; i < b.N; i++ {
		if _, err := derive(domain.ChainEthereum, int64(i%100000)); err != nil {
			b.Fatal(err)
		}
	}
}
