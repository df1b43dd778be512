package hd

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tyler-smith/go-bip39"
)

// ErrInvalidMnemonic: the phrase is not a valid BIP-39 English mnemonic
// (wrong word count, a word not in the list, or a bad checksum).
var ErrInvalidMnemonic = errors.New("hd: invalid BIP-39 mnemonic")

// The encoding, the English word list and the seed are go-bip39's, checked
// against the official (Trezor) vectors in TestBIP39TrezorVectors. What
// stays here is the policy: canonical form, and errors that never echo a
// word of the secret.

// NewMnemonic encodes entropy (16, 20, 24, 28 or 32 bytes) as a BIP-39
// English mnemonic of 12 to 24 words.
func NewMnemonic(entropy []byte) (string, error) {
	n := len(entropy)
	if n < 16 || n > 32 || n%4 != 0 {
		return "", fmt.Errorf("hd: entropy of %d bytes; want 16..32 in steps of 4", n)
	}
	m, err := bip39.NewMnemonic(entropy)
	if err != nil {
		return "", fmt.Errorf("hd: mnemonic: %w", err)
	}
	return m, nil
}

// GenerateMnemonic returns a fresh 24-word mnemonic (256 bits of entropy from rand).
func GenerateMnemonic(rand io.Reader) (string, error) {
	entropy := make([]byte, 32)
	if _, err := io.ReadFull(rand, entropy); err != nil {
		return "", fmt.Errorf("hd: entropy: %w", err)
	}
	return NewMnemonic(entropy)
}

// NormalizeMnemonic checks a mnemonic's words and checksum and returns it in
// canonical form: lower-case words separated by single spaces (what every
// wallet derives its seed from). Errors: ErrInvalidMnemonic.
func NormalizeMnemonic(mnemonic string) (string, error) {
	words := strings.Fields(strings.ToLower(mnemonic))
	switch len(words) {
	case 12, 15, 18, 21, 24:
	default:
		return "", fmt.Errorf("%w: %d words; want 12, 15, 18, 21 or 24", ErrInvalidMnemonic, len(words))
	}
	for i, w := range words {
		if _, ok := bip39.GetWordIndex(w); !ok {
			// The word itself is not echoed: it is part of a secret.
			return "", fmt.Errorf("%w: word %d is not in the BIP-39 English list", ErrInvalidMnemonic, i+1)
		}
	}
	m := strings.Join(words, " ")
	// go-bip39's error names no word; it is dropped all the same.
	if _, err := bip39.EntropyFromMnemonic(m); err != nil {
		return "", fmt.Errorf("%w: checksum does not match", ErrInvalidMnemonic)
	}
	return m, nil
}

// Seed derives the 64-byte BIP-39 seed from a mnemonic and an optional
// passphrase (PBKDF2-HMAC-SHA512, 2048 rounds). The mnemonic is checked
// first. Errors: ErrInvalidMnemonic.
func Seed(mnemonic, passphrase string) ([]byte, error) {
	m, err := NormalizeMnemonic(mnemonic)
	if err != nil {
		return nil, err
	}
	return bip39.NewSeed(m, passphrase), nil
}
