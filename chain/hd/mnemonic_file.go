package hd

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/acceptcryptohere/gateway/domain"
)

// LoadOrCreateMnemonic finds the operator's master mnemonic: fromEnv when it
// is not empty (PIC_MNEMONIC), else the file at path (PIC_MNEMONIC_FILE),
// else it generates a fresh 24-word mnemonic and writes it to path with
// 0600 permissions (parent directories 0700). created tells the caller to
// log loudly that a new seed exists and must be backed up; the mnemonic
// itself must never be logged. The result is normalized and checked.
// Errors: ErrInvalidMnemonic, and I/O errors naming path.
func LoadOrCreateMnemonic(path string, fromEnv string) (mnemonic string, created bool, err error) {
	if fromEnv != "" {
		m, err := NormalizeMnemonic(fromEnv)
		if err != nil {
			return "", false, fmt.Errorf("mnemonic from environment: %w", err)
		}
		return m, false, nil
	}
	if path == "" {
		return "", false, errors.New("hd: no mnemonic given and no file to keep one in")
	}
	body, err := os.ReadFile(path)
	if err == nil {
		m, err := NormalizeMnemonic(string(body))
		if err != nil {
			return "", false, fmt.Errorf("mnemonic file %s: %w", path, err)
		}
		return m, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("mnemonic file: %w", err)
	}
	m, err := GenerateMnemonic(rand.Reader)
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("mnemonic file: %w", err)
	}
	// O_EXCL: two processes starting at once must not each write their own seed.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateMnemonic(path, "")
	}
	if err != nil {
		return "", false, fmt.Errorf("mnemonic file: %w", err)
	}
	_, werr := f.WriteString(m + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return "", false, fmt.Errorf("mnemonic file %s: %w", path, werr)
	}
	return m, true, nil
}

// GenerationFile is where seed generation g's words are kept, beside
// generation 0's file path: path itself for 0, then path.1, path.2, ...
func GenerationFile(path string, g int) string {
	if g == 0 {
		return path
	}
	return fmt.Sprintf("%s.%d", path, g)
}

// LoadGenerations finds every seed generation, oldest first: generation 0
// as LoadOrCreateMnemonic finds (or creates) it, then the files
// GenerationFile(path, 1), (path, 2), ... up to the first missing one.
// Errors: those of LoadOrCreateMnemonic, for any generation.
func LoadGenerations(path, fromEnv string) (words []string, created bool, err error) {
	first, created, err := LoadOrCreateMnemonic(path, fromEnv)
	if err != nil {
		return nil, false, err
	}
	words = []string{first}
	for g := 1; path != ""; g++ {
		file := GenerationFile(path, g)
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			break
		}
		m, _, err := LoadOrCreateMnemonic(file, "")
		if err != nil {
			return nil, false, fmt.Errorf("seed generation %d: %w", g, err)
		}
		words = append(words, m)
	}
	return words, created, nil
}

// AddGeneration keeps mnemonic (or, when it is empty, a fresh 24-word
// one) as the next seed generation after those LoadGenerations finds, in
// GenerationFile(path, g) (0600, never overwritten). It returns g and the
// file. Errors: no generation 0 to rotate from, an invalid mnemonic, one
// that is already a generation, and I/O errors.
func AddGeneration(path, fromEnv, mnemonic string) (g int, file string, err error) {
	if fromEnv == "" {
		if _, err := os.Stat(path); err != nil {
			return 0, "", fmt.Errorf("no seed to rotate from at %s: %w", path, err)
		}
	}
	have, _, err := LoadGenerations(path, fromEnv)
	if err != nil {
		return 0, "", err
	}
	if mnemonic == "" {
		if mnemonic, err = GenerateMnemonic(rand.Reader); err != nil {
			return 0, "", err
		}
	} else if mnemonic, err = NormalizeMnemonic(mnemonic); err != nil {
		return 0, "", fmt.Errorf("new seed: %w", err)
	}
	for i, m := range have {
		if m == mnemonic {
			return 0, "", fmt.Errorf("the new seed is generation %d already", i)
		}
	}
	g = len(have)
	file = GenerationFile(path, g)
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, "", fmt.Errorf("seed generation %d: %w", g, err)
	}
	_, werr := f.WriteString(mnemonic + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(file)
		return 0, "", fmt.Errorf("seed generation %d: %w", g, werr)
	}
	return g, file, nil
}

// NewWallets is the wallet of every generation's words, oldest first,
// with one BIP-39 passphrase (Join).
func NewWallets(words []string, passphrase string, btcParams *chaincfg.Params) (*Wallet, error) {
	gens := make([]*Wallet, len(words))
	for g, m := range words {
		w, err := NewWallet(m, passphrase, btcParams)
		if err != nil {
			return nil, fmt.Errorf("seed generation %d: %w", g, err)
		}
		gens[g] = w
	}
	return Join(gens...)
}

// NewWatchOnlyGenerations is NewWatchOnly of every generation's account
// keys, oldest first (Join).
func NewWatchOnlyGenerations(accounts []map[domain.Chain]string, btcParams *chaincfg.Params) (*Wallet, error) {
	gens := make([]*Wallet, len(accounts))
	for g, a := range accounts {
		w, err := NewWatchOnly(a, btcParams)
		if err != nil {
			return nil, fmt.Errorf("seed generation %d: %w", g, err)
		}
		gens[g] = w
	}
	return Join(gens...)
}
