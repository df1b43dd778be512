package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// Statements answers a merchant's period statements (readapi.LogStatements).
type Statements interface {
	Statement(ctx context.Context, merchantID string, from, to time.Time) (readapi.Statement, error)
}

// maxStatementDays bounds a statement's period: a year and a day.
const maxStatementDays = 367

var errNoStatements = errorf(http.StatusServiceUnavailable, "service_unavailable", "statements are not available on this server")

// getStatement is GET /v1/statements?from=&to=: the merchant's period
// statement of [from, to) by recorded time: per account and asset the
// opening, the movements by kind, the closing, and the hash chain's link
// the statement read to (docs/operations.md, "Period statements").
func (s *server) getStatement(w http.ResponseWriter, r *http.Request) {
	if s.d.Statements == nil {
		s.writeError(w, r, errNoStatements)
		return
	}
	q := r.URL.Query()
	from, err := statementBound("from", q.Get("from"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	to, err := statementBound("to", q.Get("to"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !from.Before(to) {
		s.writeError(w, r, fmt.Errorf("%w: from must be before to", domain.ErrValidation))
		return
	}
	if to.Sub(from) > maxStatementDays*24*time.Hour {
		s.writeError(w, r, fmt.Errorf("%w: a statement covers at most %d days", domain.ErrValidation, maxStatementDays))
		return
	}
	st, err := s.d.Statements.Statement(r.Context(), mustPrincipal(r).merchantID, from, to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, statementJSON{Object: "statement", Statement: st})
}

type statementJSON struct {
	Object string `json:"object"`
	readapi.Statement
}

// statementBound reads a date (midnight UTC) or an RFC 3339 time.
func statementBound(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("%w: %s is required (YYYY-MM-DD or an RFC 3339 time)", domain.ErrValidation, name)
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s %q: want YYYY-MM-DD or an RFC 3339 time", domain.ErrValidation, name, v)
	}
	return t.UTC(), nil
}
