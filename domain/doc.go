// Package domain is the gateway's business rules with no I/O: assets and
// their precision (assets.json), decimal amounts, fee rules and rounding,
// the aggregates (Merchant, Invoice, Funds, Payout, address reservations),
// their events as Go structs with stable string type names (Decode), and
// the ledger postings every money event carries, which sum to zero per
// asset.
//
// An aggregate decides on a copy of its state and returns new events; its
// Apply rebuilds state from stored events without validating again. The
// clock, ids and prices are passed in, so the same inputs always give the
// same events. It imports only the standard library and shopspring/decimal
// (internal/layout checks this).
package domain
