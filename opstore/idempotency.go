package opstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/acceptcryptohere/gateway/sqldb"
)

// IdempotencyRecord is the state of one key (see Idempotency.Claim).
type IdempotencyRecord struct {
	Claimed  bool
	Token    string
	SameBody bool
	Done     bool
	Response StoredResponse
	// FirstClaim is when the key was first claimed, kept across releases
	// until the key expires: what a claimed request derives its command id
	// from, so that its retries name the same command.
	FirstClaim time.Time
}

// StoredResponse is a response to replay.
type StoredResponse struct {
	Status int
	Body   []byte
}

const (
	// IdempotencyTTL: a key is remembered this long, as Stripe does.
	IdempotencyTTL = 24 * time.Hour
	// ClaimLease: an in-progress claim older than this belongs to a process
	// that died mid-request; the key may be claimed again.
	ClaimLease = 2 * time.Minute
	// sweepEvery: how often Claim also deletes every expired row.
	sweepEvery = time.Hour
)

// Idempotency remembers the first response to each Idempotency-Key, in
// the table idempotency_keys. scope is who sent the key and to which
// endpoint ("mer_…|POST|/v1/invoices"); the same key in another scope is
// another key.
//
// What the table holds cannot reveal a response or a request by itself:
// the row id is SHA-256 of scope and key, the response body (a key
// rotation's answer holds the new secret key) is sealed with AES-256-GCM
// under a key derived from the scope and the Idempotency-Key, and the
// request body is kept only as an HMAC under another derived key. Only a
// client that knows the Idempotency-Key can have its response decrypted.
type Idempotency struct {
	db        sqldb.DB
	mu        sync.Mutex
	lastSweep time.Time
}

// NewIdempotency returns the store over db; run Migrate first.
func NewIdempotency(db sqldb.DB) *Idempotency { return &Idempotency{db: db} }

// idemKeys are the values derived from scope and key; each use has its
// own label so one cannot stand in for another.
type idemKeys struct {
	id     string
	encKey [32]byte
	macKey [32]byte
}

func deriveIdem(scope, key string) idemKeys {
	d := func(label string) [32]byte { return sha256.Sum256([]byte(label + "\x00" + scope + "\x00" + key)) }
	id := d("pic-idem-id")
	return idemKeys{id: hex.EncodeToString(id[:]), encKey: d("pic-idem-enc"), macKey: d("pic-idem-mac")}
}

func (k idemKeys) requestMAC(body []byte) string {
	m := hmac.New(sha256.New, k.macKey[:])
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Claim looks the key up, deleting it first if it has expired. A new key,
// a released one or one whose claim's lease ran out is claimed for this
// request (Claimed, with a Token for Complete or Release) when the body is
// the first request's; otherwise what is stored is returned: whether body
// matches the first request's, and the first response once it is Done.
func (s *Idempotency) Claim(ctx context.Context, scope, key string, body []byte, now time.Time) (IdempotencyRecord, error) {
	k := deriveIdem(scope, key)
	nowMs := now.UnixMilli()
	s.sweep(ctx, now)
	if _, err := s.db.Write.ExecContext(ctx, s.db.Q(`DELETE FROM idempotency_keys WHERE id = ? AND created_at < ?`),
		k.id, nowMs-IdempotencyTTL.Milliseconds()); err != nil {
		return IdempotencyRecord{}, fmt.Errorf("idempotency: expire: %w", err)
	}
	mac := k.requestMAC(body)
	token, err := randomHex(16)
	if err != nil {
		return IdempotencyRecord{}, err
	}
	res, err := s.db.Write.ExecContext(ctx, s.db.Q(
		`INSERT INTO idempotency_keys (id, claim, request_mac, state, status, created_at, claimed_at) VALUES (?, ?, ?, 'in_progress', 0, ?, ?)
		 ON CONFLICT (id) DO NOTHING`), k.id, token, mac, nowMs, nowMs)
	if err != nil {
		return IdempotencyRecord{}, fmt.Errorf("idempotency: claim: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return IdempotencyRecord{}, fmt.Errorf("idempotency: claim: %w", err)
	} else if n == 1 {
		return IdempotencyRecord{Claimed: true, Token: token, SameBody: true, FirstClaim: time.UnixMilli(nowMs)}, nil
	}
	// Someone holds the key; committed rows are visible to the read pool.
	var storedMAC, state, holder string
	var status int
	var sealed []byte
	var createdMs, claimedMs int64
	err = s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT request_mac, state, claim, status, response, created_at, COALESCE(claimed_at, created_at)
		FROM idempotency_keys WHERE id = ?`), k.id).Scan(&storedMAC, &state, &holder, &status, &sealed, &createdMs, &claimedMs)
	if errors.Is(err, sql.ErrNoRows) {
		// Expired between our insert and our read: report it as still in
		// progress; the caller polls and claims it on its next try.
		return IdempotencyRecord{SameBody: true}, nil
	}
	if err != nil {
		return IdempotencyRecord{}, fmt.Errorf("idempotency: read: %w", err)
	}
	sameBody := hmac.Equal([]byte(storedMAC), []byte(mac))
	if sameBody && (state == "released" || (state == "in_progress" && claimedMs < nowMs-ClaimLease.Milliseconds())) {
		// Take it over (it was released, or its holder's lease ran out: a
		// process that died mid-request), only from the holder we read, so
		// that of two takers one wins.
		res, err := s.db.Write.ExecContext(ctx, s.db.Q(
			`UPDATE idempotency_keys SET claim = ?, state = 'in_progress', claimed_at = ? WHERE id = ? AND claim = ? AND state = ?`),
			token, nowMs, k.id, holder, state)
		if err != nil {
			return IdempotencyRecord{}, fmt.Errorf("idempotency: reclaim: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return IdempotencyRecord{}, fmt.Errorf("idempotency: reclaim: %w", err)
		} else if n == 1 {
			return IdempotencyRecord{Claimed: true, Token: token, SameBody: true, FirstClaim: time.UnixMilli(createdMs)}, nil
		}
		return IdempotencyRecord{SameBody: true, FirstClaim: time.UnixMilli(createdMs)}, nil // another taker won: poll
	}
	rec := IdempotencyRecord{SameBody: sameBody, FirstClaim: time.UnixMilli(createdMs)}
	if !rec.SameBody || state != "done" {
		return rec, nil
	}
	plain, err := open(k, sealed)
	if err != nil {
		return IdempotencyRecord{}, fmt.Errorf("idempotency: %w", err)
	}
	rec.Done, rec.Response = true, StoredResponse{Status: status, Body: plain}
	return rec, nil
}

// Complete stores the response of the claimed request. Errors: the claim
// was lost (its lease expired and another request took the key).
func (s *Idempotency) Complete(ctx context.Context, scope, key, token string, resp StoredResponse) error {
	k := deriveIdem(scope, key)
	sealed, err := seal(k, resp.Body)
	if err != nil {
		return fmt.Errorf("idempotency: %w", err)
	}
	res, err := s.db.Write.ExecContext(ctx, s.db.Q(
		`UPDATE idempotency_keys SET state = 'done', status = ?, response = ? WHERE id = ? AND claim = ?`),
		resp.Status, sealed, k.id, token)
	if err != nil {
		return fmt.Errorf("idempotency: complete: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n != 1 {
		return fmt.Errorf("idempotency: complete: the claim was lost (lease of %s expired)", ClaimLease)
	}
	return nil
}

// Release gives up a claim whose request failed, so a retry with the same
// body runs again. The key keeps its first claim's time (and so its command
// id): the failed request may have written before it failed, and the retry
// must be recognised as the same command.
func (s *Idempotency) Release(ctx context.Context, scope, key, token string) error {
	k := deriveIdem(scope, key)
	if _, err := s.db.Write.ExecContext(ctx, s.db.Q(`UPDATE idempotency_keys SET state = 'released', claim = '' WHERE id = ? AND claim = ?`), k.id, token); err != nil {
		return fmt.Errorf("idempotency: release: %w", err)
	}
	return nil
}

// sweep deletes all expired rows, at most once per sweepEvery; a failure
// only delays the cleanup.
func (s *Idempotency) sweep(ctx context.Context, now time.Time) {
	s.mu.Lock()
	due := now.Sub(s.lastSweep) >= sweepEvery
	if due {
		s.lastSweep = now
	}
	s.mu.Unlock()
	if due {
		s.db.Write.ExecContext(ctx, s.db.Q(`DELETE FROM idempotency_keys WHERE created_at < ?`), now.Add(-IdempotencyTTL).UnixMilli())
	}
}

// seal encrypts body; the row id is the additional data, so a sealed
// response cannot be moved to another key's row.
func seal(k idemKeys, body []byte) ([]byte, error) {
	gcm, err := newGCM(k)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, body, []byte(k.id)), nil
}

func open(k idemKeys, sealed []byte) ([]byte, error) {
	gcm, err := newGCM(k)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, errors.New("stored response is truncated")
	}
	plain, err := gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], []byte(k.id))
	if err != nil {
		return nil, fmt.Errorf("stored response does not decrypt: %w", err)
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, nil
}

func newGCM(k idemKeys) (cipher.AEAD, error) {
	block, err := aes.NewCipher(k.encKey[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(b), nil
}
