package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// principal is who a request acts for.
type principal struct {
	merchantID string
	kind       readapi.KeyKind
	// viaSession: authenticated by the dashboard cookie, which a browser
	// sends on its own; such requests need the CSRF header to change state.
	viaSession bool
}

type principalKey struct{}

func principalFrom(ctx context.Context) (principal, bool) {
	p, ok := ctx.Value(principalKey{}).(principal)
	return p, ok
}

// mustPrincipal is for handlers behind authenticate; a missing principal is
// a routing bug.
func mustPrincipal(r *http.Request) principal {
	p, ok := principalFrom(r.Context())
	if !ok {
		panic("httpapi: handler of " + r.URL.Path + " is not behind authenticate")
	}
	return p
}

// maxKeyLen bounds what we hash or look up; real keys are about 60 characters.
const maxKeyLen = 200

// presentedKey returns the API key of a request: Authorization: Bearer, or
// x-api-key; "" when neither is sent. A request that carries two different
// credentials (both headers with different keys, or either header twice
// with different values) is errAmbiguousCredentials, whatever the keys are
// and before any of them is looked up: which key acts must never be a
// guess. The same key sent in both headers is that key.
func presentedKey(r *http.Request) (string, error) {
	key := ""
	take := func(k string) error {
		if key != "" && k != key {
			return errAmbiguousCredentials
		}
		key = k
		return nil
	}
	for _, h := range r.Header.Values("Authorization") {
		if h == "" {
			continue
		}
		k := "\x00invalid" // an Authorization header we do not understand is not "no key"
		if scheme, token, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			if k = strings.TrimSpace(token); k == "" {
				continue
			}
		}
		if err := take(k); err != nil {
			return "", err
		}
	}
	for _, h := range r.Header.Values("x-api-key") {
		if k := strings.TrimSpace(h); k != "" {
			if err := take(k); err != nil {
				return "", err
			}
		}
	}
	return key, nil
}

// authenticate resolves the key or the session cookie to a merchant, or
// answers 401. A header key wins over a cookie, so a script that also
// carries a browser's cookies acts with the key it chose.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.resolve(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		// One bucket per credential: a merchant's secret and publishable
		// keys are limited separately, so a busy checkout cannot starve the
		// merchant's back office.
		if err := s.perKey.allow(p.merchantID+"|"+string(p.kind), s.now()); err != nil {
			s.writeRateLimited(w, r, err)
			return
		}
		if p.viaSession && !safeMethod(r.Method) && r.Header.Get("X-Requested-With") == "" {
			// SameSite=Strict already keeps other sites' requests from
			// carrying the cookie; the custom header is a second, independent
			// guard: cross-origin pages cannot set it without a CORS
			// preflight, which this API never approves.
			s.writeError(w, r, errCSRF)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func (s *server) resolve(r *http.Request) (principal, error) {
	key, err := presentedKey(r)
	if err != nil {
		return principal{}, err
	}
	if key == "" {
		if c, err := r.Cookie(sessionCookie); err == nil {
			return s.verifySession(r.Context(), c.Value)
		}
		return principal{}, errUnauthorized
	}
	if len(key) > maxKeyLen {
		return principal{}, errUnauthorized
	}
	var kind readapi.KeyKind
	lookup := key
	switch {
	case strings.HasPrefix(key, commands.SecretKeyPrefix):
		// Secret keys are stored only as hashes; looking up the hash does
		// not compare the secret itself byte by byte.
		kind, lookup = readapi.SecretKey, commands.HashSecretKey(key)
	case strings.HasPrefix(key, commands.PublishableKeyPrefix):
		kind = readapi.PublishableKey
	default:
		return principal{}, errUnauthorized
	}
	id, err := s.d.Reader.MerchantByKey(r.Context(), kind, lookup)
	if errors.Is(err, domain.ErrNotFound) {
		id, err = s.lookupAfterCatchUp(r, kind, lookup)
	}
	if errors.Is(err, domain.ErrNotFound) {
		return principal{}, errUnauthorized
	}
	if err != nil {
		return principal{}, err
	}
	return principal{merchantID: id, kind: kind}, nil
}

// secretOnly admits secret keys and sessions; publishable keys get 403.
func secretOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, _ := principalFrom(r.Context()); p.kind != readapi.SecretKey {
			writeJSON(w, errForbiddenKey.status, errorBody{errForbiddenKey.code, errForbiddenKey.message})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// constantTimeEqual compares two secrets-derived strings without leaking
// where they differ.
func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// clientIP is the address the per-IP rate limits are scoped to. Only a
// configured proxy header is trusted, never one by default.
func (s *server) clientIP(r *http.Request) string {
	if h := s.cfg.ClientIPHeader; h != "" {
		if v := r.Header.Get(h); v != "" {
			if i := strings.LastIndexByte(v, ','); i >= 0 {
				v = v[i+1:] // the entry our proxy appended
			}
			if ip := net.ParseIP(strings.TrimSpace(v)); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// lookupAfterCatchUp looks a key up again once the read models hold every
// event recorded before the request: behind a load balancer a key signed
// up (or rotated) on another instance reaches this one before its
// projections do. Read models that cannot catch up in time answer 503
// with Retry-After: whether the key exists is not known yet.
func (s *server) lookupAfterCatchUp(r *http.Request, kind readapi.KeyKind, lookup string) (string, error) {
	if s.d.Wait == nil {
		return "", domain.ErrNotFound
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadYourWritesWait)
	defer cancel()
	if err := s.d.Wait.WaitRecordedBefore(ctx, time.Now()); err != nil {
		if r.Context().Err() != nil {
			return "", r.Context().Err()
		}
		s.log.WarnContext(r.Context(), "httpapi: read models behind; an unknown key answered 503", "err", err)
		return "", errKeyNotYetKnown
	}
	return s.d.Reader.MerchantByKey(r.Context(), kind, lookup)
}
