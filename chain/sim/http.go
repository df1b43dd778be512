package sim

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/domain"
)

// ErrNoToken: the operator endpoints are never served without a token.
var ErrNoToken = errors.New("sim: the simulator's HTTP endpoints need an operator token (PIC_SIM_TOKEN)")

// maxBody bounds a request body.
const maxBody = 16 << 10

// Routes returns the operator-only endpoints, each behind
// "Authorization: Bearer <token>":
//
//	POST /v1/sim/pay   {"invoice_id": "inv_…" | "address": "…", "amount": "0.01"}
//	POST /v1/sim/mine  {"blocks": 1}        (blocks defaults to 1)
//	POST /v1/sim/reorg {"depth": 1, "reinclude": true}
//
// They answer JSON; errors are {"error","message"}: 400 bad input, 401 no
// or wrong token, 404 unknown invoice. The handler matches full paths, so
// it can be mounted as-is (mux.Handle("/v1/sim/", h)). Errors: ErrNoToken.
func (s *Simulator) Routes(token string) (http.Handler, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	want := sha256.Sum256([]byte(token))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sim/pay", s.handlePay)
	mux.HandleFunc("POST /v1/sim/mine", s.handleMine)
	mux.HandleFunc("POST /v1/sim/reorg", s.handleReorg)
	mux.HandleFunc("/v1/sim/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/sim/pay" || r.URL.Path == "/v1/sim/mine" || r.URL.Path == "/v1/sim/reorg" {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "this endpoint accepts POST")
			return
		}
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		got, ok := strings.CutPrefix(auth, "Bearer ")
		// Compare digests in constant time: neither the token nor its length leaks.
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid simulator token")
			return
		}
		mux.ServeHTTP(w, r)
	}), nil
}

type payRequest struct {
	InvoiceID string `json:"invoice_id"`
	Address   string `json:"address"`
	Amount    string `json:"amount"`
	// PaymentID makes a retry the same payment (also Idempotency-Key).
	PaymentID string `json:"payment_id"`
}

type mineRequest struct {
	Blocks *int `json:"blocks"`
}

type reorgRequest struct {
	Depth int `json:"depth"`
	// Reinclude (default true): the transactions go back to the mempool
	// and the next blocks mine them again; false models a double spend.
	Reinclude *bool `json:"reinclude,omitempty"`
}

func (s *Simulator) handlePay(w http.ResponseWriter, r *http.Request) {
	var req payRequest
	if !decode(w, r, &req) {
		return
	}
	target := req.InvoiceID
	switch {
	case req.InvoiceID != "" && req.Address != "":
		writeError(w, http.StatusBadRequest, "validation_error", "give invoice_id or address, not both")
		return
	case target == "":
		target = req.Address
	}
	if target == "" || req.Amount == "" {
		writeError(w, http.StatusBadRequest, "validation_error", "invoice_id (or address) and amount are required")
		return
	}
	id := req.PaymentID
	if id == "" {
		id = r.Header.Get("Idempotency-Key")
	}
	if len(id) > 255 {
		writeError(w, http.StatusBadRequest, "validation_error", "payment_id is at most 255 characters")
		return
	}
	p, err := s.PayOnce(r.Context(), target, req.Amount, id)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Simulator) handleMine(w http.ResponseWriter, r *http.Request) {
	var req mineRequest
	if !decode(w, r, &req) {
		return
	}
	blocks := 1
	if req.Blocks != nil {
		blocks = *req.Blocks
	}
	if blocks < 1 {
		writeError(w, http.StatusBadRequest, "validation_error", fmt.Sprintf("blocks must be between 1 and %d", MaxBlocks))
		return
	}
	res, err := s.Mine(r.Context(), blocks)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Simulator) handleReorg(w http.ResponseWriter, r *http.Request) {
	var req reorgRequest
	if !decode(w, r, &req) {
		return
	}
	res, err := s.Reorg(r.Context(), req.Depth, req.Reinclude == nil || *req.Reinclude)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// decode reads a JSON body strictly; an empty body is an empty object.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", "the request body is too large")
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		writeError(w, http.StatusBadRequest, "invalid_json", "the body must be one JSON object with the documented fields")
		return false
	}
	return true
}

// writeErr maps an error to a status; internal details stay in the log.
func (s *Simulator) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, domain.ErrInvalidAmount):
		writeError(w, http.StatusBadRequest, "invalid_amount", err.Error())
	case errors.Is(err, domain.ErrValidation):
		writeError(w, http.StatusBadRequest, "validation_error", err.Error())
	case errors.Is(err, domain.ErrUnsupportedAsset):
		writeError(w, http.StatusBadRequest, "unsupported_asset", err.Error())
	case errors.Is(err, domain.ErrNotFound), errors.Is(err, chain.ErrNotOurs):
		writeError(w, http.StatusNotFound, "not_found", "no such invoice")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
	default:
		s.log.Error("sim: internal error", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "internal error")
	}
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{Error: code, Message: message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
