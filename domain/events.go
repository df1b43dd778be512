package domain

import (
	"encoding/json"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

// Event is a fact in the log. Its type name is a stable string constant,
// independent of the Go type's name.
type Event interface{ EventType() string }

// Event type names, as stored. Never rename one: old logs use them.
const (
	TypeMerchantRegistered     = "MerchantRegistered"
	TypeAPIKeysRotated         = "ApiKeysRotated"
	TypeWebhookSecretRotated   = "WebhookSecretRotated"
	TypeAccountSettingsChanged = "AccountSettingsChanged"
	TypePayoutSettingsChanged  = "PayoutSettingsChanged"

	TypeInvoiceCreated         = "InvoiceCreated"
	TypeDepositDetected        = "DepositDetected"
	TypeDepositConfirmed       = "DepositConfirmed"
	TypeDepositReverted        = "DepositReverted"
	TypeDepositFinalized       = "DepositFinalized"
	TypeConversionWaiting      = "ConversionWaitingForPrice"
	TypeConversionAbandoned    = "ConversionAbandoned"
	TypePaymentConverted       = "PaymentConverted"
	TypeInvoiceReverted        = "InvoiceReverted"
	TypeBalanceNegative        = "BalanceNegative"
	TypeInvoicePartiallyPaid   = "InvoicePartiallyPaid"
	TypeInvoiceConfirming      = "InvoiceConfirming"
	TypeInvoicePaid            = "InvoicePaid"
	TypeInvoiceExpired         = "InvoiceExpired"
	TypeInvoiceAwaitingPayment = "InvoiceAwaitingPayment"

	TypeAddressReserved        = "AddressReserved"
	TypeAddressIndexesReserved = "AddressIndexesReserved"

	TypePayoutRequested    = "PayoutRequested"
	TypePayoutSigned       = "PayoutSigned"
	TypePayoutSent         = "PayoutSent"
	TypePayoutConfirmed    = "PayoutConfirmed"
	TypePayoutFailed       = "PayoutFailed"
	TypePayoutCanceled     = "PayoutCanceled"
	TypeConversionExecuted = "ConversionExecuted"
)

// Merchant events.

type MerchantRegistered struct {
	MerchantID     string `json:"merchant_id"`
	Name           string `json:"name"`
	WebhookURL     string `json:"webhook_url,omitempty"`
	SecretKeyHash  string `json:"secret_key_hash"` // hex SHA-256 of the secret key
	PublishableKey string `json:"publishable_key"`
	// WebhookSecret is the secret in clear: only in logs from before
	// secrets were sealed (issue #17), and from command handlers built
	// without a sealer (tests). picd writes WebhookSecretSealed instead.
	WebhookSecret string `json:"webhook_secret,omitempty"`
	// WebhookSecretSealed is the secret sealed under a key kept outside
	// the log (webhooks.SecretBox), opened only where deliveries are signed.
	WebhookSecretSealed string    `json:"webhook_secret_sealed,omitempty"`
	RegisteredAt        time.Time `json:"registered_at"`
}

type APIKeysRotated struct {
	MerchantID     string    `json:"merchant_id"`
	SecretKeyHash  string    `json:"secret_key_hash"`
	PublishableKey string    `json:"publishable_key"`
	RotatedAt      time.Time `json:"rotated_at"`
}

type WebhookSecretRotated struct {
	MerchantID string `json:"merchant_id"`
	// WebhookSecret and WebhookSecretSealed: as in MerchantRegistered.
	WebhookSecret       string `json:"webhook_secret,omitempty"`
	WebhookSecretSealed string `json:"webhook_secret_sealed,omitempty"`
	// Rekeyed: the secret did not change; it is the one an older event
	// holds in clear, now sealed (picd does this once at start). The
	// merchant should still rotate: the clear value stays in the log.
	Rekeyed   bool      `json:"rekeyed,omitempty"`
	RotatedAt time.Time `json:"rotated_at"`
}

// AccountSettingsChanged carries the new values of all account settings.
type AccountSettingsChanged struct {
	MerchantID    string    `json:"merchant_id"`
	WebhookURL    string    `json:"webhook_url"`
	ConsolidateTo string    `json:"consolidate_to"`
	ChangedAt     time.Time `json:"changed_at"`
	// Branding is the checkout's branding (issue #19); empty in logs from
	// before it existed, as it then was.
	Branding
}

type PayoutSettingsChanged struct {
	MerchantID string `json:"merchant_id"`
	PayoutSettings
	ChangedAt time.Time `json:"changed_at"`
}

// Invoice events.

type InvoiceCreated struct {
	InvoiceID             string `json:"invoice_id"`
	MerchantID            string `json:"merchant_id"`
	Asset                 string `json:"asset"`
	Decimals              int32  `json:"decimals"`
	Amount                Amount `json:"amount"`
	PayAmount             Amount `json:"pay_amount"`
	PayAddress            string `json:"pay_address"`
	AddressIndex          int64  `json:"address_index"`
	RequiredConfirmations int    `json:"required_confirmations"`
	Finality              int    `json:"finality,omitempty"` // blocks; 0 in logs from before finality: RequiredConfirmations
	SettleAsset           string `json:"settle_asset,omitempty"`
	// ConvertTo is where payments would be converted as created (settle_as,
	// else the account's consolidate_to); the first credit fixes it.
	ConvertTo string    `json:"convert_to,omitempty"`
	OrderID   string    `json:"order_id,omitempty"`
	Fee       FeeCalc   `json:"fee"` // at the invoice's tier, on Amount
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// CreatedBy is the kind of key that created the invoice; "" in logs
	// from before it was recorded, read as the secret key (Creator).
	CreatedBy CreatedBy `json:"created_by,omitempty"`
	// The merchant's details and the fiat price (issue #19); absent in
	// logs from before them.
	Description string            `json:"description,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	RedirectURL string            `json:"redirect_url,omitempty"`
	Price       *InvoicePrice     `json:"price,omitempty"`
}

type DepositDetected struct {
	InvoiceID     string    `json:"invoice_id"`
	MerchantID    string    `json:"merchant_id"`
	DepositID     string    `json:"deposit_id"` // chain-unique: txid and output or log index
	TxID          string    `json:"txid"`
	Asset         string    `json:"asset"`
	Amount        Amount    `json:"amount"`
	Confirmations int       `json:"confirmations"`
	Late          bool      `json:"late"` // arrived after the invoice ended; credited all the same
	DetectedAt    time.Time `json:"detected_at"`
	Postings      []Posting `json:"postings"`
}

// RequiredFinality is the depth at which the invoice's payments are final.
func (e InvoiceCreated) RequiredFinality() int { return max(e.Finality, e.RequiredConfirmations) }

// DepositConfirmed credits a deposit (money rule 1). Fee is the invoice's
// whole fee after it, on everything credited; FeeBefore was the fee
// before; this deposit is charged the difference (Charged = Fee.Fee −
// FeeBefore) and Net = Amount − Charged stays pending until final.
type DepositConfirmed struct {
	InvoiceID     string    `json:"invoice_id"`
	MerchantID    string    `json:"merchant_id"`
	DepositID     string    `json:"deposit_id"`
	Asset         string    `json:"asset"`
	Amount        Amount    `json:"amount"`
	Confirmations int       `json:"confirmations"`
	Fee           FeeCalc   `json:"fee"`
	FeeBefore     Amount    `json:"fee_before"`
	Charged       Amount    `json:"charged"`
	Net           Amount    `json:"net"`
	ConvertTo     string    `json:"convert_to,omitempty"`
	ConfirmedAt   time.Time `json:"confirmed_at"`
	Postings      []Posting `json:"postings"`
}

// Legacy reports a confirmation recorded before the money rules of
// 2026-12-03: it charged the fee of this deposit alone and credited
// available at once (the payment counts as final).
func (e DepositConfirmed) Legacy() bool {
	for _, p := range e.Postings {
		if strings.HasSuffix(p.Account, ":available") {
			return true
		}
	}
	return false
}

// LegacyFeeRefund is the fee a reversal recorded before the money rules
// gave back (it carries no Fee): the negative posting to the fee account.
func (e DepositReverted) LegacyFeeRefund() (Amount, bool) {
	if e.Fee != nil {
		return Amount{}, false
	}
	for _, p := range e.Postings {
		if p.Account == FeeAccount {
			return p.Amount.Neg(), true
		}
	}
	return Amount{}, false
}

// DepositFinalized makes a credited deposit's net available (money rule 4).
type DepositFinalized struct {
	InvoiceID   string    `json:"invoice_id"`
	MerchantID  string    `json:"merchant_id"`
	DepositID   string    `json:"deposit_id"`
	Asset       string    `json:"asset"`
	Net         Amount    `json:"net"`
	Depth       int       `json:"depth"`
	Round       int       `json:"round"` // which detection of the deposit became final
	FinalizedAt time.Time `json:"finalized_at"`
	Postings    []Posting `json:"postings"`
}

// DepositReverted undoes a deposit (money rule 5). For a credited one, Fee
// is the invoice's fee after it and Refund what the fee account gives back;
// ShiftAmount is charged to deposit ShiftTo when the refund differs from
// this deposit's share of the fee.
type DepositReverted struct {
	InvoiceID   string    `json:"invoice_id"`
	MerchantID  string    `json:"merchant_id"`
	DepositID   string    `json:"deposit_id"`
	Asset       string    `json:"asset"`
	Amount      Amount    `json:"amount"`
	Reason      string    `json:"reason"`
	Fee         *FeeCalc  `json:"fee,omitempty"`
	Refund      Amount    `json:"refund"`
	ShiftTo     string    `json:"shift_to,omitempty"`
	ShiftAmount Amount    `json:"shift_amount"`
	RevertedAt  time.Time `json:"reverted_at"`
	Postings    []Posting `json:"postings"`
}

// ConversionWaiting: a credited deposit's conversion has no fresh price
// and waits on its own (money rule 3).
type ConversionWaiting struct {
	InvoiceID  string    `json:"invoice_id"`
	MerchantID string    `json:"merchant_id"`
	DepositID  string    `json:"deposit_id"`
	Reason     string    `json:"reason"`
	Since      time.Time `json:"since"`
}

// ConversionAbandoned: no price came within the longest wait; the
// invoice's payments stay in their coin at the 25 bps tier (Fee, on all it
// credited), and Refund is the fee difference returned.
type ConversionAbandoned struct {
	InvoiceID  string  `json:"invoice_id"`
	MerchantID string  `json:"merchant_id"`
	DepositID  string  `json:"deposit_id"`
	Asset      string  `json:"asset"`
	Reason     string  `json:"reason"`
	Fee        FeeCalc `json:"fee"`
	Refund     Amount  `json:"refund"`
	// Refunds is what each credited payment got back, into its own account.
	Refunds  map[string]Amount `json:"refunds,omitempty"`
	At       time.Time         `json:"at"`
	Postings []Posting         `json:"postings"`
}

// PaymentConverted records on the invoice that a final payment's net was
// converted (ConversionID, in the funds stream of the paid coin), so the
// invoice's own stream tells its settlement without reading another.
type PaymentConverted struct {
	InvoiceID    string    `json:"invoice_id"`
	MerchantID   string    `json:"merchant_id"`
	DepositID    string    `json:"deposit_id"`
	ConversionID string    `json:"conversion_id"`
	To           string    `json:"to"`
	Credited     Amount    `json:"credited"`
	At           time.Time `json:"at"`
}

// BalanceNegative: a reversal left a merchant's available balance below
// zero, a debt that later credits repay first (money rule 6). It moves no
// money: the postings that made the debt are the reversal's.
type BalanceNegative struct {
	MerchantID string    `json:"merchant_id"`
	Asset      string    `json:"asset"`
	Available  Amount    `json:"available"`
	CauseID    string    `json:"cause_event_id"`
	InvoiceID  string    `json:"invoice_id,omitempty"`
	At         time.Time `json:"at"`
}

// InvoiceStatusChanged is the body of every status event; the event type
// says which status was entered.
type InvoiceStatusChanged struct {
	InvoiceID      string    `json:"invoice_id"`
	MerchantID     string    `json:"merchant_id"`
	From           Status    `json:"from"`
	To             Status    `json:"to"`
	AmountReceived Amount    `json:"amount_received"`
	At             time.Time `json:"at"`
}

// AddressReserved records that an invoice expects pay_amount on a reused
// address until OpenUntil, so no other open invoice uses the same amount.
type AddressReserved struct {
	Asset     string    `json:"asset"`
	Address   string    `json:"address"`
	InvoiceID string    `json:"invoice_id"`
	PayAmount Amount    `json:"pay_amount"`
	OpenUntil time.Time `json:"open_until"`
}

// AddressIndexesReserved hands a block of HD derivation indexes of a chain
// to one allocator, so two invoices never get the same fresh address.
type AddressIndexesReserved struct {
	Chain Chain `json:"chain"`
	From  int64 `json:"from"`
	Count int64 `json:"count"`
}

func (AddressIndexesReserved) EventType() string { return TypeAddressIndexesReserved }
func (MerchantRegistered) EventType() string     { return TypeMerchantRegistered }
func (APIKeysRotated) EventType() string         { return TypeAPIKeysRotated }
func (WebhookSecretRotated) EventType() string   { return TypeWebhookSecretRotated }
func (AccountSettingsChanged) EventType() string { return TypeAccountSettingsChanged }
func (PayoutSettingsChanged) EventType() string  { return TypePayoutSettingsChanged }
func (InvoiceCreated) EventType() string         { return TypeInvoiceCreated }
func (DepositDetected) EventType() string        { return TypeDepositDetected }
func (DepositConfirmed) EventType() string       { return TypeDepositConfirmed }
func (DepositReverted) EventType() string        { return TypeDepositReverted }
func (AddressReserved) EventType() string        { return TypeAddressReserved }
func (DepositFinalized) EventType() string       { return TypeDepositFinalized }
func (ConversionWaiting) EventType() string      { return TypeConversionWaiting }
func (ConversionAbandoned) EventType() string    { return TypeConversionAbandoned }
func (BalanceNegative) EventType() string        { return TypeBalanceNegative }
func (PaymentConverted) EventType() string       { return TypePaymentConverted }

// EventType of a status change is the type of the status entered.
func (e InvoiceStatusChanged) EventType() string {
	switch e.To {
	case StatusPartiallyPaid:
		return TypeInvoicePartiallyPaid
	case StatusConfirming:
		return TypeInvoiceConfirming
	case StatusPaid:
		return TypeInvoicePaid
	case StatusExpired:
		return TypeInvoiceExpired
	case StatusNew:
		return TypeInvoiceAwaitingPayment
	case StatusReverted:
		return TypeInvoiceReverted
	}
	panic("domain: status change to " + string(e.To))
}

func (e DepositDetected) LedgerPostings() []Posting     { return e.Postings }
func (e DepositConfirmed) LedgerPostings() []Posting    { return e.Postings }
func (e DepositReverted) LedgerPostings() []Posting     { return e.Postings }
func (e DepositFinalized) LedgerPostings() []Posting    { return e.Postings }
func (e ConversionAbandoned) LedgerPostings() []Posting { return e.Postings }

// Decode turns a body in this build's shape into its Go type. A body read
// from the log goes through DecodeStored, which upcasts it first.
func Decode(eventType string, data []byte) (Event, error) {
	return DefaultSchemas.Decode(eventType, DefaultSchemas.Current(eventType), data)
}

// decode reads a body with the JSON v2 engine (go-json-experiment/json,
// the implementation behind Go's encoding/json/v2): twice encoding/json's
// rate on the log's events, which every rebuild, audit and stream load
// decodes. Bodies are what encoding/json wrote, so they decode the same
// (TestBodiesDecodeAsEncodingJSON); a duplicated name or invalid UTF-8,
// which encoding/json never writes, is refused instead of read loosely.
func decode[T Event](data []byte) (Event, error) {
	var v T
	err := jsonv2.Unmarshal(data, &v)
	return v, err
}

// Encode serialises an event's body; its type travels beside it.
func Encode(e Event) ([]byte, error) { return json.Marshal(e) }
