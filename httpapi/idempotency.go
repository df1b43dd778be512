package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
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

// commandIDFor derives a command id from scope, key and the key's first
// claim, so that a retry that reaches the handler again (after a released
// key) is recognised by the event store too. It is a public-id-shaped id
// whose time is the first claim's: the ids of what the command creates
// take their time from it (domain.DerivedID), not from the retry's clock.
func commandIDFor(scope, key string, firstClaim time.Time) string {
	h := sha256.Sum256([]byte("pic-idem-cmd\x00" + scope + "\x00" + key))
	var tail [10]byte
	copy(tail[:], h[:])
	return domain.FormatID("idem_", uint64(firstClaim.UnixMilli()), tail)
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(b), nil
}
