package custody

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
)

// Keys is what the signer gives at setup: the account-level public keys
// and the Bitcoin network they are for. No private key ever leaves it.
type Keys struct {
	BitcoinNetwork string `json:"bitcoin_network"`
	// Accounts are seed generation 0's keys; Generations every
	// generation's, oldest first (hd.Wallet.GenerationKeys): new addresses
	// come from the last.
	Accounts    map[domain.Chain]string   `json:"accounts"`
	Generations []map[domain.Chain]string `json:"generations,omitempty"`
	// EthereumHotIndex is the hot wallet's key number (hd.KeyNumber of
	// the current generation).
	EthereumHotIndex int64 `json:"ethereum_hot_index"`
}

// Server is the signer's HTTP API on a Unix socket or a TLS listener:
//
//	GET  /v1/keys  → Keys
//	POST /v1/sign  Request → {"raw": bytes} | 403 refused | 423 held (awaiting approval)
//
// Errors are {"error", "message"}.
type Server struct {
	Keys   Keys
	Signer Signer
	Logger *slog.Logger
}

// maxRequest bounds a request body: a transaction is a few hundred bytes.
const maxRequest = 1 << 20

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/keys", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Keys) })
	mux.HandleFunc("POST /v1/sign", s.sign)
	return mux
}

func (s *Server) sign(w http.ResponseWriter, r *http.Request) {
	var req Request
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the body is not a signing request: "+err.Error())
		return
	}
	start := time.Now()
	raw, err := s.Signer.Sign(r.Context(), req)
	log := s.Logger.With("chain", req.Chain, "purpose", req.Purpose, "payout_id", req.PayoutID, "took", time.Since(start))
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		log = log.With("client", r.TLS.PeerCertificates[0].Subject.CommonName)
	}
	switch {
	case errors.Is(err, ErrHeld):
		log.Warn("held", "reason", err.Error())
		writeError(w, http.StatusLocked, "held", err.Error())
	case errors.Is(err, ErrRefused):
		log.Warn("refused", "reason", err.Error())
		writeError(w, http.StatusForbidden, "refused", err.Error())
	case err != nil:
		log.Error("signing failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	default:
		writeJSON(w, http.StatusOK, map[string][]byte{"raw": raw})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]string{"error": code, "message": message})
}

// ListenUnix listens on a Unix socket only its owner may use (0600,
// created so from the start), replacing a stale socket file left by a
// process that died.
func ListenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("signer socket %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("signer socket %s: another signer listens on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("signer socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Serve answers on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	// Refused TLS handshakes (no client certificate, another CA) are
	// logged by the server: the signer's log says who knocked.
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn)}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Client asks a signer over its Unix socket or over TCP with mutual TLS;
// it implements Signer.
type Client struct {
	http *http.Client
	base string
}

// Dial makes a client of the signer at addr: unix:///path/to/signer.sock
// or a plain path. Nothing is connected until the first request.
func Dial(addr string) (*Client, error) {
	path := strings.TrimPrefix(addr, "unix://")
	if path == "" || strings.Contains(path, "://") {
		return nil, fmt.Errorf("signer address %q: want unix:///path/to/signer.sock", addr)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}, MaxIdleConnsPerHost: 4}
	return &Client{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, base: "http://signer"}, nil
}

// DialTLS makes a client of the signer at https://host:port, which must
// show a certificate cfg's RootCAs trust for host; cfg also carries this
// client's certificate (ClientTLS). Nothing is connected until the first
// request.
func DialTLS(addr string, cfg *tls.Config) (*Client, error) {
	u, err := url.Parse(addr)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("signer address %q: want https://host:port", addr)
	}
	if cfg == nil || len(cfg.Certificates) == 0 {
		return nil, fmt.Errorf("signer %s: no client certificate", addr)
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4, TLSHandshakeTimeout: 10 * time.Second}
	return &Client{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, base: "https://" + u.Host}, nil
}

// Keys asks for the account keys.
func (c *Client) Keys(ctx context.Context) (Keys, error) {
	var k Keys
	return k, c.do(ctx, http.MethodGet, "/v1/keys", nil, &k)
}

// Sign implements Signer. Errors: ErrRefused (the payout fails), ErrHeld
// (it waits), anything else temporary (the signer is down: ask again).
func (c *Client) Sign(ctx context.Context, req Request) ([]byte, error) {
	var out struct {
		Raw []byte `json:"raw"`
	}
	if err := c.do(ctx, http.MethodPost, "/v1/sign", req, &out); err != nil {
		return nil, err
	}
	return out.Raw, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("signer unreachable: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRequest))
	if err != nil {
		return fmt.Errorf("signer: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		return json.Unmarshal(b, out)
	}
	var e struct{ Error, Message string }
	_ = json.Unmarshal(b, &e)
	switch resp.StatusCode {
	case http.StatusForbidden:
		return fmt.Errorf("%w: %s", ErrRefused, strings.TrimPrefix(e.Message, ErrRefused.Error()+": "))
	case http.StatusLocked:
		return fmt.Errorf("%w: %s", ErrHeld, strings.TrimPrefix(e.Message, ErrHeld.Error()+": "))
	}
	return fmt.Errorf("signer: %s: %s %s", resp.Status, e.Error, e.Message)
}
