// Package custody is where transactions get their signatures. A sender
// (chain/eth, ...) never holds a private key: it builds an unsigned
// transaction and asks a Signer. Local signs in the same process from the
// seed (the quick start); Client asks a separate `picd signer` process over
// a Unix socket or TCP with mutual TLS, whose Policy checks every request against the event log,
// keeps an append-only record of what it signed and enforces per-asset
// limits before its Local signs.
package custody

import (
	"context"
	"errors"
	"fmt"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/domain"
)

// Purposes of a transaction. A payout is checked against the log; the
// others move the gateway's own funds between its own addresses, and the
// signer checks that the destination is one of them.
const (
	PurposePayout = "payout" // the hot wallet pays a payout or refund of the log
	PurposeSweep  = "sweep"  // a deposit address sends to the hot wallet
	PurposeTopUp  = "topup"  // the hot wallet sends gas to a deposit address
	PurposeVoid   = "void"   // the hot wallet sends 0 to itself to use up a nonce
)

// Request asks for one transaction's signature.
type Request struct {
	Chain   domain.Chain `json:"chain"`
	Purpose string       `json:"purpose"`
	// PayoutID and MerchantID name the payout (purpose payout): the
	// signer finds its PayoutRequested in the merchant's funds stream.
	PayoutID   string `json:"payout_id,omitempty"`
	MerchantID string `json:"merchant_id,omitempty"`
	Asset      string `json:"asset,omitempty"`
	// FundsVersion is where in the funds stream the payout's request is
	// (nil: unknown). The signer reads that one event and checks it is the
	// request, instead of reading a stream that grows by a payout at a time;
	// anything else there and it reads the stream as before.
	FundsVersion *int64 `json:"funds_version,omitempty"`
	// FromIndex is the HD index (receive branch) of the signing address.
	FromIndex int64 `json:"from_index"`
	// ToIndex is the HD index of a top-up's destination, or of a Bitcoin
	// payout's change output.
	ToIndex int64 `json:"to_index,omitempty"`
	// Inputs are a Bitcoin transaction's inputs in order: the HD index of
	// the address each spends and its value. A wrong value only makes
	// the signature invalid (SegWit signs the amount).
	Inputs []Input `json:"inputs,omitempty"`
	// Unsigned is the transaction to sign, as the chain encodes it
	// (Ethereum: the EIP-2718 binary of a type-2 transaction; Bitcoin:
	// the serialised transaction without witnesses).
	Unsigned []byte `json:"unsigned"`
}

// At is a FundsVersion of v.
func At(v int64) *int64 { return &v }

// Input is a spent Bitcoin output of the gateway's wallet.
type Input struct {
	Index int64 `json:"index"`
	Sat   int64 `json:"sat"`
}

// Signer signs transactions; it never hands out a key. The signed bytes
// are the chain's raw transaction. For a payout already signed, a signer
// may return that earlier transaction instead (the same payout is never
// signed twice): the caller uses what it gets back.
type Signer interface {
	Sign(ctx context.Context, req Request) ([]byte, error)
}

// ErrRefused: the signer will not sign this request, now or later (it
// does not match the log, or asks for what the signer never signs). It
// wraps chain.ErrPermanent: the payout fails and its funds are released.
var ErrRefused = fmt.Errorf("%w: signer refused", chain.ErrPermanent)

// ErrHeld: the payout is beyond a limit and waits for an operator's
// `picd signer approve`; asking again later is right.
var ErrHeld = fmt.Errorf("%w: awaiting approval", chain.ErrHeld)

func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// IsRefused tells a refusal apart from a signer that could not answer.
func IsRefused(err error) bool { return errors.Is(err, ErrRefused) }
