package domain

import "errors"

// Errors of the domain, mapped to HTTP statuses in one table in httpapi.
var (
	ErrUnsupportedAsset = errors.New("unsupported asset")
	ErrInvalidAmount    = errors.New("invalid amount")
	ErrValidation       = errors.New("validation failed")
	ErrNotFound         = errors.New("not found")
	// ErrInvalidState: the aggregate cannot do that now (for example expiring a paid invoice).
	ErrInvalidState = errors.New("invalid state")
	// ErrInsufficientFunds: the merchant's available balance does not cover
	// a withdrawal or a conversion (after what is already reserved).
	ErrInsufficientFunds = errors.New("insufficient funds")
	// ErrPriceUnavailable: no fresh price for a pair (missing, stale, or the
	// oracle is down). Never answered with a guess.
	ErrPriceUnavailable = errors.New("price unavailable")
)
