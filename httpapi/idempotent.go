package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/acceptcryptohere/gateway/readapi"
)

// maxIdempotencyKeyLen: Stripe allows 255 characters; so do we.
const maxIdempotencyKeyLen = 255

// idempotencyPoll is how often a duplicate request looks whether the first
// one has finished.
const idempotencyPoll = 25 * time.Millisecond

// commandID is the command id for the request's write, for routes under
// idempotent: derived from the Idempotency-Key when one is honoured (so the
// event store, too, recognises a retry), random otherwise.
func (s *server) commandID(r *http.Request) string {
	if first, ok := r.Context().Value(firstClaimKey{}).(time.Time); ok {
		return commandIDFor(s.idemScope(r), r.Header.Get("Idempotency-Key"), first)
	}
	return randomCommandID()
}

// firstClaimKey holds, in a claimed request's context, when its key was
// first claimed (for commandID).
type firstClaimKey struct{}

// randomCommandID names a write that no retry will repeat.
func randomCommandID() string {
	id, err := randomHex(16)
	if err != nil {
		panic("httpapi: crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	return "cmd_" + id
}

// idemScope is who sent the key to which endpoint. Each merchant has two
// key spaces: its secret key's (shared with its dashboard sessions, which
// act as the secret key) and its publishable key's. The publishable key is
// public, so a key it uses must never squat, replay or conflict with the
// same Idempotency-Key of the merchant's own server. The secret key's scope
// is the merchant id alone, as before the spaces were split, so keys stored
// before then keep their meaning.
func (s *server) idemScope(r *http.Request) string {
	p := mustPrincipal(r)
	who := p.merchantID
	if p.kind != readapi.SecretKey {
		who += "|" + string(p.kind)
	}
	return who + "|" + r.Method + "|" + r.URL.Path
}

// idempotent makes a mutating request safe to retry with Idempotency-Key:
// the same key and body replay the first response (Idempotent-Replayed:
// true), another body is a 409, and concurrent duplicates wait for the first
// and then replay it. A first request that fails with a 5xx releases the
// key, because nothing may have happened and the retry deserves to run.
func (s *server) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if key == "" || s.d.Idempotency == nil {
			next.ServeHTTP(w, r)
			return
		}
		if !validIdempotencyKey(key) {
			s.writeError(w, r, errorf(http.StatusBadRequest, "validation_error", "Idempotency-Key must be 1 to 255 printable ASCII characters"))
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				s.writeError(w, r, errTooLarge)
			} else {
				s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_json", "could not read the request body"))
			}
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		scope := s.idemScope(r)
		// A timer, not the injected clock: the wait is real time even
		// when Deps.Now is a test's fixed clock.
		waited := time.NewTimer(s.cfg.IdempotencyWait)
		defer waited.Stop()
		for {
			rec, err := s.d.Idempotency.Claim(r.Context(), scope, key, body, s.now())
			switch {
			case err != nil:
				s.writeError(w, r, err)
				return
			case !rec.SameBody:
				s.writeError(w, r, errIdemConflict)
				return
			case rec.Done:
				w.Header().Set("Idempotent-Replayed", "true")
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.WriteHeader(rec.Response.Status)
				w.Write(rec.Response.Body)
				return
			case rec.Claimed:
				s.runClaimed(w, r.WithContext(context.WithValue(r.Context(), firstClaimKey{}, rec.FirstClaim)), next, scope, key, rec.Token)
				return
			}
			select {
			case <-waited.C:
				w.Header().Set("Retry-After", "1")
				s.writeError(w, r, errIdemInProgress)
				return
			default:
			}
			select {
			case <-r.Context().Done():
				return // the client left
			case <-time.After(idempotencyPoll):
			}
		}
	})
}

// runClaimed runs the request that holds the key, stores its response and
// only then answers, so a retry that arrives right after the answer
// already finds it stored.
func (s *server) runClaimed(w http.ResponseWriter, r *http.Request, next http.Handler, scope, key, token string) {
	// The outcome must be recorded even if the client disconnects.
	ctx := context.WithoutCancel(r.Context())
	rec := &recorder{header: w.Header(), status: http.StatusOK}
	settled := false
	defer func() {
		if !settled { // a panic: let a retry run again
			if err := s.d.Idempotency.Release(ctx, scope, key, token); err != nil {
				s.log.ErrorContext(ctx, "httpapi: releasing an idempotency key", "err", err)
			}
		}
	}()
	next.ServeHTTP(rec, r)
	if rec.status >= 500 {
		if err := s.d.Idempotency.Release(ctx, scope, key, token); err != nil {
			s.log.ErrorContext(ctx, "httpapi: releasing an idempotency key", "err", err)
		}
	} else if err := s.d.Idempotency.Complete(ctx, scope, key, token, StoredResponse{Status: rec.status, Body: rec.body.Bytes()}); err != nil {
		// The write happened; answer it. A retry will find the key free
		// and run again, which is the lesser harm than a key locked for a day.
		s.log.ErrorContext(ctx, "httpapi: storing an idempotent response", "err", err)
		if err := s.d.Idempotency.Release(ctx, scope, key, token); err != nil {
			s.log.ErrorContext(ctx, "httpapi: releasing an idempotency key", "err", err)
		}
	}
	settled = true
	w.WriteHeader(rec.status)
	w.Write(rec.body.Bytes())
}

func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > maxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// recorder buffers a response. Headers go straight to the real writer's
// map (they are sent only at WriteHeader there).
type recorder struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.body.Write(b)
}
