// Package readapi answers the GET endpoints from the read models that the
// projections build. It never reads the event log.
package readapi

import (
	"context"
	"database/sql"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
)

// Invoice is an invoice as the API shows it.
type Invoice struct {
	ID         string
	MerchantID string
	Asset      string
	Status     domain.Status
	Amount     domain.Amount
	PayAmount  domain.Amount
	PayAddress string
	// Fee is what the invoice was charged (money rule 1): the fee of what it
	// credited, or of Amount before any payment is credited.
	Fee         domain.Amount
	FeeBps      int64
	Settlement  Settlement
	SettleAsset string // "" when not converting
	OrderID     string
	CreatedBy   domain.CreatedBy
	// The merchant's details and the fiat price (issue #19); Metadata is
	// nil or empty when none, Price nil when created in the asset.
	Description           string
	Metadata              map[string]string
	RedirectURL           string
	Price                 *domain.InvoicePrice
	AmountReceived        domain.Amount
	RequiredConfirmations int
	Payments              []Payment
	CreatedAt             time.Time
	ExpiresAt             time.Time
	PaidAt                *time.Time
	UpdatedAt             time.Time
}

// Settlement is where the conversion of an invoice's payments stands
// (money rule 3): Status "" (no conversion yet), waiting_for_price,
// converted or unconverted; Since is set while waiting.
type Settlement struct {
	// Status is one of the Settlement… constants, or "".
	Status string
	Since  *time.Time
	Reason string
}

// Settlement statuses.
const (
	SettlementWaiting     = "waiting_for_price"
	SettlementConverted   = "converted"
	SettlementUnconverted = "unconverted"
)

// Payment is one deposit to an invoice.
type Payment struct {
	DepositID     string
	TxID          string
	Amount        domain.Amount
	Confirmations int
	Status        string // pending | confirmed | reverted
	Late          bool
	DetectedAt    time.Time
}

// Payment statuses.
const (
	PaymentPending   = "pending"
	PaymentConfirmed = "confirmed"
	PaymentReverted  = "reverted"
)

// Confirmations is the fewest confirmations among live payments (what the
// customer still waits for); 0 without payments.
func (inv Invoice) Confirmations() int {
	least := -1
	for _, p := range inv.Payments {
		if p.Status == PaymentReverted {
			continue
		}
		if least < 0 || p.Confirmations < least {
			least = p.Confirmations
		}
	}
	if least < 0 {
		return 0
	}
	return least
}

// AmountDue is what the customer still has to send: pay_amount less what
// arrived, never below 0 (an overpayment owes nothing back here). Both are
// at the asset's precision, so their difference is too.
func (inv Invoice) AmountDue() domain.Amount {
	due := inv.PayAmount.Sub(inv.AmountReceived)
	if due.IsPositive() {
		return due
	}
	return domain.Amount{}
}

// Balance of one asset.
type Balance struct {
	Asset     string
	Available domain.Amount
	Pending   domain.Amount
	// Reserved is requested payouts not yet confirmed: not available.
	Reserved domain.Amount
}

// Account is a merchant's settings.
type Account struct {
	MerchantID     string
	Name           string
	PublishableKey string
	WebhookURL     string
	ConsolidateTo  string
	PayoutSettings []domain.PayoutSettings
	CreatedAt      time.Time
	Branding       Branding
}

// Branding is how a merchant's checkout shows the shop (issue #19).
type Branding = domain.Branding

// KeyKind says which kind of key authenticated a request.
type KeyKind string

const (
	SecretKey      KeyKind = "secret"
	PublishableKey KeyKind = "publishable"
)

// InvoiceFilter selects a page of a merchant's invoices, newest first.
type InvoiceFilter struct {
	Status        domain.Status // "" for all
	Limit         int           // 1..100
	StartingAfter string        // an invoice id: the page starts after it
	// The dashboard's search (issue #20, search.go); zero values select all.
	Asset       string
	Query       string    // an invoice id, order id, pay address or txid, exactly
	Settlement  string    // a Settlement… status
	CreatedFrom time.Time // inclusive
	CreatedTo   time.Time // exclusive
}

// Reader is what the HTTP layer reads. Every method returns
// domain.ErrNotFound for a missing object, including another merchant's.
type Reader interface {
	// InvoiceByID returns the invoice; merchantID "" skips the ownership
	// check (the public status endpoint).
	InvoiceByID(ctx context.Context, merchantID, invoiceID string) (Invoice, error)
	ListInvoices(ctx context.Context, merchantID string, f InvoiceFilter) (page []Invoice, hasMore bool, err error)
	// Balances returns every asset the merchant has touched.
	Balances(ctx context.Context, merchantID string) ([]Balance, error)
	Account(ctx context.Context, merchantID string) (Account, error)
	// MerchantByKey resolves an API key: secret keys by their hash,
	// publishable keys as they are.
	MerchantByKey(ctx context.Context, kind KeyKind, keyOrHash string) (merchantID string, err error)
	PayoutByID(ctx context.Context, merchantID, payoutID string) (Payout, error)
	ListPayouts(ctx context.Context, merchantID string, f PayoutFilter) (page []Payout, hasMore bool, err error)
	// RefundsOfInvoices returns the refunds of these invoices by invoice id.
	RefundsOfInvoices(ctx context.Context, merchantID string, invoiceIDs []string) (map[string][]Payout, error)
}

// depth is where the chain scan engine saw a payment's deposit (the
// deposit_depths and chain_tips tables); all NULL when it recorded none.
type depth struct {
	chain         sql.NullString
	height, final sql.NullInt64
	tip           sql.NullInt64
}

// confirmations is the payment's live count: tip - height + 1 while its
// block is on the chain, frozen at the depth where it became final, 0
// while it is in no block (a reorg took its block) and once reverted.
// Without a recorded block (a mempool payment, a deposit from before the
// tables) it is stored, the count of the payment's last event.
func (d depth) confirmations(status string, stored int) int {
	switch {
	case status == PaymentReverted:
		return 0
	case !d.chain.Valid:
		return stored
	case !d.height.Valid:
		return 0
	case d.final.Int64 > 0:
		return int(d.final.Int64)
	case !d.tip.Valid:
		return stored
	}
	return int(max(d.tip.Int64-d.height.Int64+1, 0))
}
