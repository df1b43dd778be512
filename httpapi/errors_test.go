package httpapi

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/acceptcryptohere/gateway/domain"
)

func TestDatabaseUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connect error", &pgconn.ConnectError{Config: &pgconn.Config{}}, true},
		{"wrapped connect error", fmt.Errorf("readapi: invoice: %w", &pgconn.ConnectError{Config: &pgconn.Config{}}), true},
		{"net op error", refused, true},
		{"wrapped net op error", fmt.Errorf("commands: append: %w", refused), true},
		{"unexpected EOF", fmt.Errorf("readapi: balance: %w", io.ErrUnexpectedEOF), true},
		{"bad conn", fmt.Errorf("idempotency: %w", driver.ErrBadConn), true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"crash shutdown", fmt.Errorf("x: %w", &pgconn.PgError{Code: "57P02"}), true},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"connection exception", &pgconn.PgError{Code: "08000"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"undefined table", &pgconn.PgError{Code: "42P01"}, false},
		{"query canceled", &pgconn.PgError{Code: "57014"}, false},
		{"client gone while connecting", fmt.Errorf("x: %w", &net.OpError{Op: "dial", Err: context.Canceled}), false},
		{"deadline", context.DeadlineExceeded, false},
		{"plain EOF", io.EOF, false},
		{"domain error", domain.ErrNotFound, false},
		{"other", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := databaseUnavailable(tt.err); got != tt.want {
				t.Fatalf("databaseUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestWriteError(t *testing.T) {
	// The internal text a database error carries; it must never reach a client.
	secret := "host=db.internal user=pic password"
	tests := []struct {
		name           string
		err            error
		wantStatus     int
		wantCode       string
		wantRetryAfter string
	}{
		{"admin shutdown", fmt.Errorf("readapi: %s: %w", secret, &pgconn.PgError{Code: "57P01", Message: secret}),
			http.StatusServiceUnavailable, "service_unavailable", "2"},
		{"connection refused", fmt.Errorf("%s: %w", secret, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}),
			http.StatusServiceUnavailable, "service_unavailable", "2"},
		{"dropped connection", fmt.Errorf("%s: %w", secret, io.ErrUnexpectedEOF),
			http.StatusServiceUnavailable, "service_unavailable", "2"},
		{"deadline", fmt.Errorf("%s: %w", secret, context.DeadlineExceeded),
			http.StatusServiceUnavailable, "service_unavailable", ""},
		{"not found", fmt.Errorf("%s: %w", secret, domain.ErrNotFound), http.StatusNotFound, "not_found", ""},
		{"unique violation", fmt.Errorf("%s: %w", secret, &pgconn.PgError{Code: "23505", Message: secret}),
			http.StatusInternalServerError, "internal_error", ""},
		{"other", errors.New(secret), http.StatusInternalServerError, "internal_error", ""},
	}
	s := &server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.writeError(rec, httptest.NewRequest(http.MethodGet, "/v1/invoices", nil), tt.err)
			var body errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if rec.Code != tt.wantStatus || body.Error != tt.wantCode {
				t.Fatalf("got %d %q, want %d %q", rec.Code, body.Error, tt.wantStatus, tt.wantCode)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetryAfter {
				t.Fatalf("Retry-After = %q, want %q", got, tt.wantRetryAfter)
			}
			if strings.Contains(body.Message, secret) {
				t.Fatalf("message leaks internal text: %q", body.Message)
			}
		})
	}
}
