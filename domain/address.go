package domain

import "time"

// AddressReservations is the aggregate behind an address-<asset>-<address>
// stream: the pay amounts that open invoices expect on a reused address.
type AddressReservations struct {
	reserved []AddressReserved
}

// Apply folds an AddressReserved event.
func (r *AddressReservations) Apply(e Event) {
	if e, ok := e.(AddressReserved); ok {
		r.reserved = append(r.reserved, e)
	}
}

// Taken returns the pay amounts still reserved at now.
func (r *AddressReservations) Taken(now time.Time) map[string]bool {
	taken := map[string]bool{}
	for _, e := range r.reserved {
		if now.Before(e.OpenUntil) {
			taken[e.PayAmount.String()] = true
		}
	}
	return taken
}

// LatePaymentWindow keeps a pay amount reserved after its invoice expires,
// so a late payment still matches the right invoice.
const LatePaymentWindow = 7 * 24 * time.Hour
