package hd

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
