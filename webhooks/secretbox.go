package webhooks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Errors of SecretBox.Open.
var (
	// ErrSecretsKey: the secret was sealed under another key than the
	// box's (the data directory's secrets.key or PIC_SECRETS_KEY changed).
	ErrSecretsKey = errors.New("webhooks: webhook secret sealed under another secrets key")
	// ErrSealedSecret: the sealed form is malformed, was altered, or
	// belongs to another merchant.
	ErrSealedSecret = errors.New("webhooks: sealed webhook secret does not open")
)

const (
	sealedVersion = "v1"
	// minKeyBytes is the least key material NewSecretBox takes.
	minKeyBytes = 32
)

// SecretBox seals merchants' webhook secrets for the event log and opens
// them where deliveries are signed: AES-256-GCM with a random nonce, under
// a key derived from key material kept outside the log (picd: the data
// directory's secrets.key or PIC_SECRETS_KEY). The merchant's id is the
// associated data, so a sealed secret copied into another merchant's event
// does not open. The sealed form is "v1.<key id>.<base64url(nonce‖ciphertext)>";
// the key id names the key (it reveals nothing of it), so a gateway started
// with another key says so instead of failing every signature.
type SecretBox struct {
	aead  cipher.AEAD
	keyID string
}

// NewSecretBox derives the sealing key from key (at least 32 random bytes).
func NewSecretBox(key []byte) (*SecretBox, error) {
	if len(key) < minKeyBytes {
		return nil, fmt.Errorf("webhooks: secrets key: want at least %d bytes, got %d", minKeyBytes, len(key))
	}
	aesKey, err := hkdf.Key(sha256.New, key, nil, "picd webhook secrets v1", 32)
	if err != nil {
		return nil, err
	}
	id, err := hkdf.Key(sha256.New, key, nil, "picd webhook secrets key id", 4)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(aesKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &SecretBox{aead: aead, keyID: hex.EncodeToString(id)}, nil
}

// KeyID names the box's key in sealed forms (8 hex digits).
func (b *SecretBox) KeyID() string { return b.keyID }

// Seal returns the sealed form of merchantID's webhook secret.
func (b *SecretBox) Seal(merchantID, secret string) (string, error) {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(secret)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("webhooks: seal: %w", err)
	}
	out := b.aead.Seal(nonce, nonce, []byte(secret), []byte(merchantID))
	return sealedVersion + "." + b.keyID + "." + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open returns the secret sealed for merchantID.
// Errors: ErrSecretsKey, ErrSealedSecret.
func (b *SecretBox) Open(merchantID, sealed string) (string, error) {
	id, data, err := parseSealed(sealed)
	if err != nil {
		return "", err
	}
	if id != b.keyID {
		return "", fmt.Errorf("%w: sealed under key %s, this gateway has key %s (restore its secrets.key or PIC_SECRETS_KEY)", ErrSecretsKey, id, b.keyID)
	}
	raw, err := base64.RawURLEncoding.DecodeString(data)
	if err != nil || len(raw) < b.aead.NonceSize()+b.aead.Overhead() {
		return "", fmt.Errorf("%w: malformed", ErrSealedSecret)
	}
	n := b.aead.NonceSize()
	secret, err := b.aead.Open(nil, raw[:n], raw[n:], []byte(merchantID))
	if err != nil {
		return "", fmt.Errorf("%w: altered, or another merchant's", ErrSealedSecret)
	}
	return string(secret), nil
}

// SealedKeyID returns the id of the key a sealed secret was sealed under.
// Errors: ErrSealedSecret.
func SealedKeyID(sealed string) (string, error) {
	id, _, err := parseSealed(sealed)
	return id, err
}

func parseSealed(sealed string) (keyID, data string, err error) {
	version, rest, ok1 := strings.Cut(sealed, ".")
	keyID, data, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || version != sealedVersion || keyID == "" || data == "" {
		return "", "", fmt.Errorf("%w: not a %s sealed form", ErrSealedSecret, sealedVersion)
	}
	return keyID, data, nil
}
