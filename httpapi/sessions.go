package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// sessionCookie is the dashboard's session. Its value is stateless:
//
//	base64url("v1|merchant_id|expiry_unix|secret_key_hash") "." base64url(HMAC-SHA256)
//
// The secret key hash is in the cookie so that verification can look the
// merchant up by it: after a key rotation the hash no longer resolves, so
// every session of the old key ends at once without a session table. The
// hash is not the key (the key has 192 random bits, so the hash cannot be
// reversed), and the cookie is HttpOnly.
const sessionCookie = "pic_session"

type sessionRequest struct {
	SecretKey string `json:"secret_key"`
}

type sessionResponse struct {
	MerchantID string `json:"merchant_id"`
	ExpiresAt  int64  `json:"expires_at"` // Unix ms
}

// createSession is POST /v1/sessions: log in with the secret key. The key
// is checked like an API key; the answer sets the cookie.
func (s *server) createSession(w http.ResponseWriter, r *http.Request) {
	var req sessionRequest
	if err := decodeJSON(r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !strings.HasPrefix(req.SecretKey, commands.SecretKeyPrefix) || len(req.SecretKey) > maxKeyLen {
		s.writeError(w, r, errUnauthorized)
		return
	}
	hash := commands.HashSecretKey(req.SecretKey)
	id, err := s.d.Reader.MerchantByKey(r.Context(), readapi.SecretKey, hash)
	if errors.Is(err, domain.ErrNotFound) {
		err = errUnauthorized
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	expires := s.setSession(w, id, hash)
	writeJSON(w, http.StatusCreated, sessionResponse{MerchantID: id, ExpiresAt: expires.UnixMilli()})
}

// deleteSession is DELETE /v1/sessions: log out. It needs no valid session,
// so a stale cookie can always be cleared.
func (s *server) deleteSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, s.cookie("", -1))
	w.WriteHeader(http.StatusNoContent)
}

// setSession issues a session cookie for the merchant's current key hash.
func (s *server) setSession(w http.ResponseWriter, merchantID, keyHash string) time.Time {
	expires := s.now().Add(s.cfg.SessionTTL).Truncate(time.Second)
	payload := "v1|" + merchantID + "|" + strconv.FormatInt(expires.Unix(), 10) + "|" + keyHash
	value := base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(s.sessionMAC(payload))
	http.SetCookie(w, s.cookie(value, int(s.cfg.SessionTTL.Seconds())))
	return expires
}

func (s *server) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
	}
}

func (s *server) sessionMAC(payload string) []byte {
	m := hmac.New(sha256.New, s.cfg.SessionSecret)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// verifySession checks the MAC, the expiry and that the key hash still
// belongs to the merchant. Every failure is the same 401.
func (s *server) verifySession(ctx context.Context, value string) (principal, error) {
	enc, encMAC, ok := strings.Cut(value, ".")
	if !ok || len(value) > 1024 {
		return principal{}, errUnauthorized
	}
	raw, err1 := base64.RawURLEncoding.DecodeString(enc)
	mac, err2 := base64.RawURLEncoding.DecodeString(encMAC)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.sessionMAC(string(raw))) {
		return principal{}, errUnauthorized
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 4 || parts[0] != "v1" {
		return principal{}, errUnauthorized
	}
	expiry, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || !s.now().Before(time.Unix(expiry, 0)) {
		return principal{}, errUnauthorized
	}
	id, err := s.d.Reader.MerchantByKey(ctx, readapi.SecretKey, parts[3])
	if errors.Is(err, domain.ErrNotFound) {
		return principal{}, errUnauthorized // the key was rotated
	}
	if err != nil {
		return principal{}, err
	}
	if !constantTimeEqual(id, parts[1]) {
		return principal{}, errUnauthorized
	}
	return principal{merchantID: id, kind: readapi.SecretKey, viaSession: true}, nil
}
