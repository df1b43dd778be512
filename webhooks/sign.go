package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
)

// Header names of a delivery, as the API promises.
const (
	HeaderEvent     = "x-payincrypto-event"
	HeaderSignature = "x-payincrypto-signature"
	HeaderDelivery  = "x-payincrypto-delivery"
)

// ErrBadSignature: the signature header is missing, malformed, or was not
// made with the secret over these exact bytes.
var ErrBadSignature = errors.New("webhooks: signature does not match")

// Sign returns the x-payincrypto-signature value for body:
// "sha256=" + hex(HMAC-SHA256(body, secret)).
func Sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery the way a receiver should: rawBody must be the
// request body exactly as received (not re-serialised JSON), signatureHeader
// the x-payincrypto-signature header, and secret the merchant's webhook
// secret (whsec_…). The comparison takes constant time. It returns nil when
// the signature is valid and an error wrapping ErrBadSignature otherwise.
func Verify(rawBody []byte, signatureHeader string, secret string) error {
	want := Sign(rawBody, secret)
	if subtle.ConstantTimeCompare([]byte(want), []byte(signatureHeader)) != 1 {
		return ErrBadSignature
	}
	return nil
}
