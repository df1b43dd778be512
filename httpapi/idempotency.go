package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/acceptcryptohere/gateway/opstore"
)

// IdempotencyStore remembers the first response to each Idempotency-Key.
// scope is who sent the key and to which endpoint ("mer_…|POST|/v1/invoices");
// the same key in another scope is another key.
type IdempotencyStore interface {
	// Claim looks the key up, deleting it first if it has expired. A new
	// key is claimed for this request (Claimed, with a Token for Complete or
	// Release); a known key returns what is stored: whether body matches the
	// first request's, and the first response once it is Done.
	Claim(ctx context.Context, scope, key string, body []byte, now time.Time) (IdempotencyRecord, error)
	// Complete stores the response of the claimed request.
	Complete(ctx context.Context, scope, key, token string, resp StoredResponse) error
	// Release forgets a claim whose request failed, so a retry runs again.
	Release(ctx context.Context, scope, key, token string) error
}

// IdempotencyRecord is the state of one key (opstore.Idempotency keeps it).
type IdempotencyRecord = opstore.IdempotencyRecord

// StoredResponse is a response to replay.
type StoredResponse = opstore.StoredResponse

var _ IdempotencyStore = (*opstore.Idempotency)(nil)

// commandIDFor derives a command id from scope and key, so a retry that
// reaches a command again carries the same id.
func commandIDFor(scope, key string) string {
	h := sha256.Sum256([]byte("pic-idem-cmd\x00" + scope + "\x00" + key))
	return "idem_" + hex.EncodeToString(h[:16])
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(b), nil
}
