package webhooks

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testBox(t *testing.T, fill byte) *SecretBox {
	t.Helper()
	b, err := NewSecretBox(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A sealed secret opens only with its key and for its merchant, never shows
// the secret, and differs each time it is sealed.
func TestSecretBox(t *testing.T) {
	box := testBox(t, 1)
	const secret = "whsec_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	sealed, err := box.Seal("mer_1", secret)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "whsec_") || strings.Contains(sealed, secret[6:20]) || !strings.HasPrefix(sealed, "v1."+box.KeyID()+".") {
		t.Fatalf("sealed form %q", sealed)
	}
	if again, _ := box.Seal("mer_1", secret); again == sealed {
		t.Fatal("two seals of one secret are equal: the nonce is not fresh")
	}
	if got, err := box.Open("mer_1", sealed); err != nil || got != secret {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := box.Open("mer_2", sealed); !errors.Is(err, ErrSealedSecret) {
		t.Fatalf("another merchant's sealed secret opened: %v", err)
	}
	other := testBox(t, 2)
	if other.KeyID() == box.KeyID() {
		t.Fatal("two keys, one key id")
	}
	if _, err := other.Open("mer_1", sealed); !errors.Is(err, ErrSecretsKey) || !strings.Contains(err.Error(), box.KeyID()) {
		t.Fatalf("open under another key: %v", err)
	}
	if id, err := SealedKeyID(sealed); err != nil || id != box.KeyID() {
		t.Fatalf("SealedKeyID = %q, %v", id, err)
	}
	tampered := []byte(sealed)
	tampered[len(tampered)-3] ^= 'A' ^ 'B'
	for _, bad := range []string{string(tampered), "v1." + box.KeyID() + ".", "v2." + box.KeyID() + ".AAAA", "whsec_x", ""} {
		if _, err := box.Open("mer_1", bad); err == nil {
			t.Errorf("opened %q", bad)
		}
	}
	if _, err := NewSecretBox(make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte key was accepted")
	}
}

// The signing test vector holds whatever the secret's storage: a sealed
// secret, once opened, signs exactly as the clear one did.
func TestSealedSecretSignsAsBefore(t *testing.T) {
	box := testBox(t, 7)
	sealed, err := box.Seal("mer_1", "whsec_test")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := box.Open("mer_1", sealed)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"invoice.paid","created_at":1782579331203,"data":{"id":"inv_1"}}`)
	// HMAC-SHA256 of body keyed with "whsec_test", computed apart (Python's hmac).
	if got, want := Sign(body, secret), "sha256=36da240399224bc696c7c04f3c72f3678c03aaa36b4d094d885d111839ef6f72"; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}
