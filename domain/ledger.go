package domain

import "fmt"

// Posting is one leg of a double-entry ledger movement. The postings of one
// event sum to zero per asset: money only moves between accounts.
type Posting struct {
	Account string `json:"account"`
	Asset   string `json:"asset"`
	Amount  Amount `json:"amount"`
}

// Ledger accounts. Money that arrives from a chain comes out of External;
// money that leaves to a chain goes back into it.
const (
	ExternalAccount = "external"
	FeeAccount      = "platform:fees"
	// NetworkFeeAccount collects the blockchain fees that payouts paid: the
	// part of a payout's amount that went to miners, not to the recipient.
	NetworkFeeAccount = "network:fees"
	// NetworkFeeRevenueAccount is the operator's revenue from the network
	// fees merchants pay in a token for the native coin the hot wallet
	// burns (a TRON token payout's TRX, converted into the token): the
	// network took none of the token, the hot wallet keeps it, and the
	// coin burned is the operator's cost (NetworkCostPaid).
	NetworkFeeRevenueAccount = "operator:network_fee_revenue"
)

// AvailableAccount holds a merchant's confirmed, spendable balance.
func AvailableAccount(merchantID string) string { return "merchant:" + merchantID + ":available" }

// PendingAccount holds a merchant's detected but unconfirmed deposits.
func PendingAccount(merchantID string) string { return "merchant:" + merchantID + ":pending" }

// ReservedAccount holds what a merchant asked to pay out and is not yet
// confirmed on chain: no longer available, not yet gone.
func ReservedAccount(merchantID string) string { return "merchant:" + merchantID + ":reserved" }

// MoneyEvent is an event that moves money.
type MoneyEvent interface {
	Event
	LedgerPostings() []Posting
}

// CheckBalanced returns an error unless postings sum to zero per asset.
func CheckBalanced(postings []Posting) error {
	sums := map[string]Amount{}
	for _, p := range postings {
		sums[p.Asset] = sums[p.Asset].Add(p.Amount)
	}
	for asset, sum := range sums {
		if !sum.IsZero() {
			return fmt.Errorf("postings of %s sum to %s, not 0", asset, sum)
		}
	}
	return nil
}

// mustBalance is an assertion: unbalanced postings are a bug in this package.
func mustBalance(postings []Posting) []Posting {
	if err := CheckBalanced(postings); err != nil {
		panic("domain: " + err.Error())
	}
	return postings
}
