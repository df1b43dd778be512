package hd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/acceptcryptohere/gateway/domain"
)

// zoo is a second valid 12-word mnemonic (BIP-39's "zoo … wrong" vector).
const zoo = "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong"

func TestKeyNumbers(t *testing.T) {
	for _, c := range []struct {
		g     int
		index int64
	}{{0, 0}, {0, 1<<31 - 1}, {1, 0}, {1, 5}, {7, 1<<31 - 1}} {
		n := KeyNumber(c.g, c.index)
		g, i, err := SplitKeyNumber(n)
		if err != nil || g != c.g || i != c.index {
			t.Errorf("KeyNumber(%d, %d) = %d splits to %d, %d, %v", c.g, c.index, n, g, i, err)
		}
	}
	if n := KeyNumber(0, 42); n != 42 {
		t.Errorf("generation 0's key number of index 42 is %d, want the index itself", n)
	}
	for _, n := range []int64{-1, 1 << 31, KeyNumber(1, 0) - 1} {
		if _, _, err := SplitKeyNumber(n); err == nil {
			t.Errorf("SplitKeyNumber(%d) accepted a negative number or an index ≥ 2^31", n)
		}
	}
}

// A wallet of two generations: generation 0 derives and signs what the
// old seed alone did, generation 1 what the new seed alone does, and the
// watch-only wallet of both generations' account keys derives the same.
func TestGenerationsKeepEachSeedsKeys(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	old, err := NewWallet(abandon, "", params)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := NewWallet(zoo, "", params)
	if err != nil {
		t.Fatal(err)
	}
	both, err := NewWallets([]string{abandon, zoo}, "", params)
	if err != nil {
		t.Fatal(err)
	}
	if both.Generation() != 1 || both.Current(9) != KeyNumber(1, 9) {
		t.Fatalf("generation %d, Current(9) = %d", both.Generation(), both.Current(9))
	}
	watch, err := NewWatchOnlyGenerations(both.GenerationKeys(), params)
	if err != nil {
		t.Fatal(err)
	}
	derive := watch.Deriver()
	for _, chain := range Chains {
		for _, index := range []int64{0, 17, 1<<31 - 1} {
			for g, single := range []*Wallet{old, fresh} {
				want, err := single.Address(chain, index)
				if err != nil {
					t.Fatal(err)
				}
				n := KeyNumber(g, index)
				for name, got := range map[string]func() (string, error){
					"seeds":   func() (string, error) { return both.Address(chain, n) },
					"watch":   func() (string, error) { return watch.Address(chain, n) },
					"deriver": func() (string, error) { return derive(chain, n) },
				} {
					if a, err := got(); err != nil || a != want {
						t.Errorf("%s: %s generation %d index %d = %s, %v; want %s", name, chain, g, index, a, err, want)
					}
				}
				k, err := both.PrivateKey(chain, n)
				if err != nil {
					t.Fatal(err)
				}
				wk, _ := single.PrivateKey(chain, index)
				if !k.Key.Equals(&wk.Key) {
					t.Errorf("%s generation %d index %d: another private key than the seed's", chain, g, index)
				}
			}
		}
	}
	if _, err := both.Address(domain.ChainEthereum, KeyNumber(2, 0)); err == nil {
		t.Error("an address of generation 2 from a wallet of two generations")
	}
	if _, err := watch.PrivateKey(domain.ChainEthereum, KeyNumber(1, 0)); err == nil {
		t.Error("a watch-only wallet gave a private key")
	}
	if _, err := Join(old, old); err == nil {
		t.Error("Join took the same seed twice")
	}
	main, _ := NewWallet(zoo, "", &chaincfg.MainNetParams)
	if _, err := Join(old, main); err == nil {
		t.Error("Join took generations of two Bitcoin networks")
	}
	if _, err := Join(old, watch); err == nil {
		t.Error("Join took a wallet of two generations as one")
	}
	// Bitcoin's account key of generation 1 is the new seed's.
	if both.GenerationKeys()[1][domain.ChainBitcoin] != fresh.AccountKeys()[domain.ChainBitcoin] {
		t.Error("generation 1's Bitcoin account key is not the new seed's")
	}
}

func TestAddGeneration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mnemonic")
	if _, _, err := AddGeneration(path, "", ""); err == nil {
		t.Fatal("rotated with no seed to rotate from")
	}
	if err := os.WriteFile(path, []byte(abandon+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := AddGeneration(path, "", abandon); err == nil || !strings.Contains(err.Error(), "generation 0 already") {
		t.Fatalf("rotating to the same seed: %v", err)
	}
	g, file, err := AddGeneration(path, "", " "+strings.ToUpper(zoo)+" ")
	if err != nil || g != 1 || file != path+".1" {
		t.Fatalf("import: generation %d at %s, %v", g, file, err)
	}
	g, file, err = AddGeneration(path, "", "")
	if err != nil || g != 2 || file != path+".2" {
		t.Fatalf("generate: generation %d at %s, %v", g, file, err)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("generation file: %v, %v", st, err)
	}
	words, created, err := LoadGenerations(path, "")
	if err != nil || created || len(words) != 3 || words[0] != abandon || words[1] != zoo {
		t.Fatalf("LoadGenerations: %d generations, created %v, %v", len(words), created, err)
	}
	if _, err := NormalizeMnemonic(words[2]); err != nil {
		t.Fatalf("generated generation 2: %v", err)
	}
	// Generation 0 from the environment: the files hold the later ones.
	fromEnv, _, err := LoadGenerations(path, abandon)
	if err != nil || len(fromEnv) != 3 {
		t.Fatalf("generation 0 from the environment: %d generations, %v", len(fromEnv), err)
	}
}
