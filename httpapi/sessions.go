package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// sessionCookie is the dashboard's session. The cookie names a session
// kept on the server (SessionStore) and carries nothing else:
//
//	base64url("v2|session_id|expiry_unix") "." base64url(HMAC-SHA256)
//
// session_id has 256 random bits; the store knows it only by its hash.
// Every request looks the session up, so ending it in the store ends it
// everywhere at once: signing out (DELETE /v1/sessions) ends this one, a
// stolen copy of the cookie included; signing out everywhere
// (DELETE /v1/sessions?all=true) and a key rotation end all of the
// merchant's. With opstore.Sessions, on every picd process of the database.
//
// The signature lets a forged or garbled cookie be refused before any
// database read. The session also records the hash of the secret key it
// signed in with, and is refused once that key no longer resolves: a
// rotation ends every session even if ending them in the store failed.
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
	expires, err := s.setSession(r.Context(), w, id, hash)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, sessionResponse{MerchantID: id, ExpiresAt: expires.UnixMilli()})
}

// deleteSession is DELETE /v1/sessions: sign out. It needs no valid
// session, so a stale cookie can always be cleared; a cookie we signed ends
// its session in the store, so a copy of it stops working too.
//
// With ?all=true it signs out everywhere: every session of the merchant
// ends. That needs the secret key or a live session (with the CSRF header,
// as every change made by cookie), so it goes through authenticate.
func (s *server) deleteSession(w http.ResponseWriter, r *http.Request) {
	switch all := r.URL.Query()["all"]; {
	case len(all) == 0 || len(all) == 1 && all[0] == "false":
	case len(all) == 1 && all[0] == "true":
		s.authenticate(secretOnly(http.HandlerFunc(s.deleteAllSessions))).ServeHTTP(w, r)
		return
	default:
		s.writeError(w, r, fmt.Errorf("%w: all must be true or false", domain.ErrValidation))
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if sid, _, err := s.parseSession(c.Value); err == nil {
			// A failure is the client's to know: the session may still be
			// live, and the cookie stays so that signing out can be retried.
			if err := s.sessions.End(r.Context(), sessionKey(sid)); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
	}
	http.SetCookie(w, s.cookie("", -1))
	w.WriteHeader(http.StatusNoContent)
}

// deleteAllSessions is DELETE /v1/sessions?all=true, behind authenticate
// and secretOnly.
func (s *server) deleteAllSessions(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	if err := s.sessions.EndAll(r.Context(), p.merchantID); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "httpapi: every dashboard session of the merchant ended", "merchant_id", p.merchantID, "by_session", p.viaSession)
	http.SetCookie(w, s.cookie("", -1))
	w.WriteHeader(http.StatusNoContent)
}

// keysRotated follows a key rotation: every session of the merchant ends
// (they already fail the key-hash check; this removes them from the store),
// and a dashboard that rotated by its session gets a new one for the new
// key. Neither may fail the rotation, whose answer holds the new keys
// shown once: a failure is logged, and the dashboard signs in again.
func (s *server) keysRotated(w http.ResponseWriter, r *http.Request, p principal, newKeyHash string) {
	if err := s.sessions.EndAll(r.Context(), p.merchantID); err != nil {
		s.log.WarnContext(r.Context(), "httpapi: key rotation: could not remove the old sessions (they end anyway: their key no longer resolves)",
			"merchant_id", p.merchantID, "err", err)
	}
	if !p.viaSession {
		return
	}
	if _, err := s.setSession(r.Context(), w, p.merchantID, newKeyHash); err != nil {
		s.log.WarnContext(r.Context(), "httpapi: key rotation: no new session for the dashboard; it must sign in again",
			"merchant_id", p.merchantID, "err", err)
	}
}

// setSession starts a session for the merchant's current key hash and
// sets its cookie. It returns when the session expires, or the store's error.
func (s *server) setSession(ctx context.Context, w http.ResponseWriter, merchantID, keyHash string) (time.Time, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return time.Time{}, fmt.Errorf("session id: %w", err)
	}
	sid := base64.RawURLEncoding.EncodeToString(raw)
	now := s.now()
	expires := now.Add(s.cfg.SessionTTL).Truncate(time.Second)
	err := s.sessions.Create(ctx, Session{ID: sessionKey(sid), MerchantID: merchantID, KeyHash: keyHash, CreatedAt: now, ExpiresAt: expires}, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("start session: %w", err)
	}
	payload := "v2|" + sid + "|" + strconv.FormatInt(expires.Unix(), 10)
	value := base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(s.sessionMAC(payload))
	http.SetCookie(w, s.cookie(value, int(s.cfg.SessionTTL.Seconds())))
	return expires, nil
}

// sessionKey is how the store knows a session: a hash of its id, so the
// table alone cannot make a cookie (the signature's key is needed too).
func sessionKey(sid string) string {
	h := sha256.Sum256([]byte("pic-session\x00" + sid))
	return hex.EncodeToString(h[:])
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

// parseSession checks the cookie's signature and returns its session id
// and expiry; errUnauthorized for anything we did not sign (a v1 cookie
// of the stateless sessions included: its holder signs in again).
func (s *server) parseSession(value string) (sid string, expiry time.Time, err error) {
	enc, encMAC, ok := strings.Cut(value, ".")
	if !ok || len(value) > 1024 {
		return "", time.Time{}, errUnauthorized
	}
	raw, err1 := base64.RawURLEncoding.DecodeString(enc)
	mac, err2 := base64.RawURLEncoding.DecodeString(encMAC)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.sessionMAC(string(raw))) {
		return "", time.Time{}, errUnauthorized
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 || parts[0] != "v2" || parts[1] == "" {
		return "", time.Time{}, errUnauthorized
	}
	unix, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", time.Time{}, errUnauthorized
	}
	return parts[1], time.Unix(unix, 0), nil
}

// verifySession checks the signature and the expiry, that the session is
// live in the store, and that the key it signed in with still belongs to
// its merchant. Every refusal is the same 401.
func (s *server) verifySession(ctx context.Context, value string) (principal, error) {
	sid, expiry, err := s.parseSession(value)
	now := s.now()
	if err != nil || !now.Before(expiry) {
		return principal{}, errUnauthorized
	}
	sess, err := s.sessions.Get(ctx, sessionKey(sid), now)
	if errors.Is(err, domain.ErrNotFound) {
		return principal{}, errUnauthorized // signed out, or ended everywhere
	}
	if err != nil {
		return principal{}, err
	}
	id, err := s.d.Reader.MerchantByKey(ctx, readapi.SecretKey, sess.KeyHash)
	if errors.Is(err, domain.ErrNotFound) {
		return principal{}, errUnauthorized // the key was rotated
	}
	if err != nil {
		return principal{}, err
	}
	if !constantTimeEqual(id, sess.MerchantID) {
		return principal{}, errUnauthorized
	}
	return principal{merchantID: id, kind: readapi.SecretKey, viaSession: true}, nil
}
