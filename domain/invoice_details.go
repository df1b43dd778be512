package domain

import (
	"fmt"
	"net/url"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Bounds of an invoice's merchant-supplied details (API.md, additions of
// 2026-12-03).
const (
	MaxDescriptionLen   = 500
	MaxMetadataKeys     = 20
	MaxMetadataKeyLen   = 40
	MaxMetadataValueLen = 500
)

// InvoicePrice is the fiat price an invoice was created from: Amount in
// Currency, at Rate (Currency per one unit of the asset) from Source, as
// of RateAt. The invoice's asset amount is Amount ÷ Rate rounded up to the
// asset's smallest unit, so the customer never pays less than the price.
type InvoicePrice struct {
	Currency string          `json:"currency"`
	Amount   Amount          `json:"amount"`
	Rate     decimal.Decimal `json:"rate"`
	Source   string          `json:"source"`
	RateAt   time.Time       `json:"rate_at"`
}

// ValidateMetadata checks the merchant's own key-value data: at most 20
// keys of 1 to 40 characters, values of at most 500, all readable text
// (ValidateText). Keys are exact: "a" and "A" are two keys.
// Errors: ErrValidation.
func ValidateMetadata(md map[string]string) error {
	if len(md) > MaxMetadataKeys {
		return fmt.Errorf("%w: metadata may have at most %d keys; it has %d", ErrValidation, MaxMetadataKeys, len(md))
	}
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first offending key is the same on every call
	for i, k := range keys {
		if k == "" {
			return fmt.Errorf("%w: metadata keys must not be empty", ErrValidation)
		}
		field := fmt.Sprintf("metadata key %d (in sorted order)", i+1)
		if err := ValidateText(field, k, MaxMetadataKeyLen); err != nil {
			return err
		}
		if err := ValidateText(field+"'s value", md[k], MaxMetadataValueLen); err != nil {
			return err
		}
	}
	return nil
}

// ValidateRedirectURL accepts "" (none) or an absolute https URL without
// credentials, where a customer is sent back to the shop after paying.
// Errors: ErrValidation.
func ValidateRedirectURL(field, s string) error {
	if s == "" {
		return nil
	}
	if utf8.RuneCountInString(s) > maxURLLen {
		return fmt.Errorf("%w: %s is longer than %d characters", ErrValidation, field, maxURLLen)
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Opaque != "" {
		return fmt.Errorf("%w: %s must be an absolute https URL without credentials", ErrValidation, field)
	}
	return ValidateText(field, s, maxURLLen)
}

// validateDetails checks description, metadata and redirect_url of n.
func (n NewInvoice) validateDetails() error {
	if err := ValidateText("description", n.Description, MaxDescriptionLen); err != nil {
		return err
	}
	if err := ValidateMetadata(n.Metadata); err != nil {
		return err
	}
	return ValidateRedirectURL("redirect_url", n.RedirectURL)
}
