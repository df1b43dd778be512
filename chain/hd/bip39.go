package hd

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrInvalidMnemonic: the phrase is not a valid BIP-39 English mnemonic
// (wrong word count, a word not in the list, or a bad checksum).
var ErrInvalidMnemonic = errors.New("hd: invalid BIP-39 mnemonic")

// englishWords is the BIP-39 English word list (SHA-256
// 2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda, checked in a test).
//
//go:embed bip39_english.txt
var englishWords string

var (
	wordList  = strings.Fields(englishWords)
	wordIndex = func() map[string]int {
		m := make(map[string]int, len(wordList))
		for i, w := range wordList {
			m[w] = i
		}
		return m
	}()
)

// NewMnemonic encodes entropy (16, 20, 24, 28 or 32 bytes) as a BIP-39
// English mnemonic of 12 to 24 words.
func NewMnemonic(entropy []byte) (string, error) {
	n := len(entropy)
	if n < 16 || n > 32 || n%4 != 0 {
		return "", fmt.Errorf("hd: entropy of %d bytes; want 16..32 in steps of 4", n)
	}
	checksumBits := n * 8 / 32
	sum := sha256.Sum256(entropy)
	bits := append(append([]byte(nil), entropy...), sum[0]) // checksum bits are at most 8
	words := make([]string, (n*8+checksumBits)/11)
	for i := range words {
		idx := 0
		for b := 0; b < 11; b++ {
			pos := i*11 + b
			idx = idx<<1 | int(bits[pos/8]>>(7-pos%8)&1)
		}
		words[i] = wordList[idx]
	}
	return strings.Join(words, " "), nil
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
	totalBits := len(words) * 11
	checksumBits := totalBits / 33
	buf := make([]byte, (totalBits+7)/8)
	for i, w := range words {
		idx, ok := wordIndex[w]
		if !ok {
			// The word itself is not echoed: it is part of a secret.
			return "", fmt.Errorf("%w: word %d is not in the BIP-39 English list", ErrInvalidMnemonic, i+1)
		}
		for b := 0; b < 11; b++ {
			if idx>>(10-b)&1 == 1 {
				pos := i*11 + b
				buf[pos/8] |= 1 << (7 - pos%8)
			}
		}
	}
	entropy := buf[:(totalBits-checksumBits)/8]
	sum := sha256.Sum256(entropy)
	mask := byte(0xff << (8 - checksumBits))
	if got := buf[len(entropy)] & mask; got != sum[0]&mask {
		return "", fmt.Errorf("%w: checksum does not match", ErrInvalidMnemonic)
	}
	return strings.Join(words, " "), nil
}

// Seed derives the 64-byte BIP-39 seed from a mnemonic and an optional
// passphrase (PBKDF2-HMAC-SHA512, 2048 rounds). The mnemonic is checked
// first. Errors: ErrInvalidMnemonic.
func Seed(mnemonic, passphrase string) ([]byte, error) {
	m, err := NormalizeMnemonic(mnemonic)
	if err != nil {
		return nil, err
	}
	return pbkdf2.Key(sha512.New, m, []byte("mnemonic"+passphrase), 2048, 64)
}
