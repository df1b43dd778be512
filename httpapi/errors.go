package httpapi

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
)

// apiError is an error the HTTP layer itself decides (bad JSON, wrong key
// type, rate limit). Its message is written for the client.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}

// Error codes of the HTTP layer's own errors.
var (
	errUnauthorized   = errorf(http.StatusUnauthorized, "unauthorized", "missing or invalid API key or session")
	errForbiddenKey   = errorf(http.StatusForbidden, "forbidden", "a publishable key cannot do this; use the secret key")
	errRegistration   = errorf(http.StatusForbidden, "registration_closed", "this gateway does not accept new merchants")
	errCSRF           = errorf(http.StatusForbidden, "csrf_header_required", "requests authenticated by the session cookie must send the X-Requested-With header")
	errNotFoundRoute  = errorf(http.StatusNotFound, "not_found", "no such endpoint")
	errMethod         = errorf(http.StatusMethodNotAllowed, "method_not_allowed", "this endpoint does not accept that method")
	errTooLarge       = errorf(http.StatusRequestEntityTooLarge, "request_too_large", "the request body is too large")
	errMediaType      = errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as Content-Type: application/json")
	errIdemConflict   = errorf(http.StatusConflict, "idempotency_conflict", "this Idempotency-Key was used with a different request body")
	errIdemInProgress = errorf(http.StatusConflict, "idempotency_in_progress", "a request with this Idempotency-Key is still being processed; retry later")
	errInternal       = errorf(http.StatusInternalServerError, "internal_error", "internal error")
)

// errAmbiguousCredentials: a request carries two different API keys; which
// one acts must never be a guess (see presentedKey).
var errAmbiguousCredentials = errorf(http.StatusBadRequest, "ambiguous_credentials",
	"the request carries two different API keys (Authorization: Bearer and x-api-key, or one header twice); send one key")

// errorTable maps the sentinel errors of domain and commands to a status
// and a code; the first match wins. An empty message means the error's own
// text is safe to show (domain errors describe the client's input). Errors
// that may wrap internal details get a fixed message.
var errorTable = []struct {
	err     error
	status  int
	code    string
	message string
}{
	{domain.ErrInvalidAmount, http.StatusBadRequest, "invalid_amount", ""},
	{domain.ErrUnsupportedAsset, http.StatusBadRequest, "unsupported_asset", ""},
	{domain.ErrValidation, http.StatusBadRequest, "validation_error", ""},
	{domain.ErrNotFound, http.StatusNotFound, "not_found", "not found"},
	{domain.ErrInvalidState, http.StatusConflict, "invalid_state", ""},
	{domain.ErrInsufficientFunds, http.StatusConflict, "insufficient_funds", ""},
	{domain.ErrPriceUnavailable, http.StatusServiceUnavailable, "price_unavailable", "no fresh price for that pair; retry later"},
	{commands.ErrMoneyOutUnavailable, http.StatusServiceUnavailable, "service_unavailable", "payouts and conversions are not available on this server"},
	{commands.ErrAddressUnavailable, http.StatusServiceUnavailable, "service_unavailable", "address generation is temporarily unavailable; retry later"},
	{commands.ErrBusy, http.StatusServiceUnavailable, "service_unavailable", "too many concurrent changes; retry later"},
	{errDatabaseUnavailable, http.StatusServiceUnavailable, "service_unavailable", "the database is unavailable; retry shortly"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "service_unavailable", "a dependency did not answer in time; retry later"},
}

// errDatabaseUnavailable stands in errorTable for the errors of a database
// that cannot be reached; databaseUnavailable recognises them, as no one
// sentinel does.
var errDatabaseUnavailable = errors.New("database unavailable")

// errNotYetReadable: the write is stored but cannot be read back yet (see
// server.readable).
var errNotYetReadable = errorf(http.StatusServiceUnavailable, "service_unavailable",
	"the change is stored but not yet readable (a failover is under way); retry with the same Idempotency-Key shortly")

// errKeyNotYetKnown: an API key was not found while the read models are
// behind the log; the key may be one signed up a moment ago elsewhere.
var errKeyNotYetKnown = errorf(http.StatusServiceUnavailable, "service_unavailable",
	"this instance cannot check the API key yet (its read models are catching up); retry shortly")

// dbRetryAfterSec is the Retry-After sent while the database is unavailable:
// a restart or failover usually takes seconds.
const dbRetryAfterSec = 2

// databaseUnavailable reports whether err means the database could not be
// reached or dropped the connection, rather than rejected the statement:
// a failed connect, a network error, a connection closed mid-message,
// database/sql's bad connection, or a server error of SQLSTATE class 08
// (connection exception) or 57P01-57P03 (shutting down, crashed, starting
// up). A canceled context is not: that is the client leaving.
func databaseUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"),
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03":
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var opErr *net.OpError
	return errors.As(err, &connectErr) || errors.As(err, &opErr) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, driver.ErrBadConn)
}

// matches reports whether err is of the kind target names in errorTable.
func matches(err, target error) bool {
	if target == errDatabaseUnavailable {
		return databaseUnavailable(err)
	}
	return errors.Is(err, target)
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// writeError renders err as {"error","message"}. Anything not in the table
// is an internal error: it is logged with its text and answered with a
// generic 500, so database or stack details never reach a client.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		if ae.status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeJSON(w, ae.status, errorBody{ae.code, ae.message})
		return
	}
	for _, e := range errorTable {
		if matches(err, e.err) {
			msg := e.message
			if msg == "" {
				msg = err.Error()
			}
			if e.status >= 500 {
				s.log.WarnContext(r.Context(), "httpapi: dependency unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			if e.err == errDatabaseUnavailable {
				w.Header().Set("Retry-After", strconv.Itoa(dbRetryAfterSec))
			}
			writeJSON(w, e.status, errorBody{e.code, msg})
			return
		}
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody reads this answer.
		s.log.DebugContext(r.Context(), "httpapi: request canceled", "method", r.Method, "path", r.URL.Path)
	} else {
		s.log.ErrorContext(r.Context(), "httpapi: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, errInternal.status, errorBody{errInternal.code, errInternal.message})
}
