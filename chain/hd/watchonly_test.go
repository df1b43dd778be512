package hd

import (
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/acceptcryptohere/gateway/domain"
)

// A watch-only wallet built from the account keys derives every address
// the seed's wallet does, and holds no private key.
func TestWatchOnlyDerivesTheSeedsAddresses(t *testing.T) {
	const words = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
	for _, params := range []*chaincfg.Params{&chaincfg.MainNetParams, &chaincfg.RegressionNetParams} {
		full, err := NewWallet(words, "", params)
		if err != nil {
			t.Fatal(err)
		}
		keys := full.AccountKeys()
		for c, k := range keys {
			if strings.HasPrefix(k, "xprv") || strings.HasPrefix(k, "tprv") {
				t.Fatalf("%s account key is private: %s", c, k[:4])
			}
		}
		watch, err := NewWatchOnly(keys, params)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range Chains {
			for _, i := range []int64{0, 1, 17, 1<<31 - 1} {
				a, _ := full.Address(c, i)
				b, err := watch.Address(c, i)
				if err != nil || a != b {
					t.Fatalf("%s %d: watch-only %q (%v), seed %q", c, i, b, err, a)
				}
			}
		}
		if _, err := watch.PrivateKey(domain.ChainEthereum, 0); !errors.Is(err, ErrWatchOnly) {
			t.Fatalf("watch-only PrivateKey: %v", err)
		}
	}
	// The BIP-84 test vector's account key (m/84'/0'/0') for this mnemonic.
	full, _ := NewWallet(words, "", &chaincfg.MainNetParams)
	if got := full.AccountKeys()[domain.ChainBitcoin]; !strings.HasPrefix(got, "xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V") {
		t.Fatalf("Bitcoin account key %s", got)
	}
	regtest, _ := NewWallet(words, "", &chaincfg.RegressionNetParams)
	if _, err := NewWatchOnly(full.AccountKeys(), &chaincfg.RegressionNetParams); err == nil {
		t.Fatal("a mainnet account key was taken for regtest")
	}
	keys := regtest.AccountKeys()
	delete(keys, domain.ChainTron)
	if _, err := NewWatchOnly(keys, &chaincfg.RegressionNetParams); err == nil {
		t.Fatal("a wallet without TRON's key was built")
	}
}
