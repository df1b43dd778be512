package domain

import (
	"fmt"
	"strings"
	"time"
)

// OperatorNetworkCostsAccount bears the network fees the gateway pays
// from its own coins (money rule 7): sweep gas, TRX burned for a sweep's
// energy, the gas of top-ups and of token payouts, a voided nonce. It is
// the operator's, like FeeAccount (fee revenue, conversion remainders
// included), and goes negative as costs are paid: the operator's income per
// asset is FeeAccount + OperatorNetworkCostsAccount.
const OperatorNetworkCostsAccount = "operator:network_costs"

// TypeNetworkCostPaid is NetworkCostPaid's stored type.
const TypeNetworkCostPaid = "NetworkCostPaid"

// Kinds of network cost (NetworkCostPaid.Kind).
const (
	CostSweepGas       = "sweep_gas"        // a deposit address's transfer to the hot wallet
	CostGasTopUp       = "gas_topup"        // the fee of sending a deposit address gas
	CostTokenPayoutGas = "token_payout_gas" // the native coin a token payout or refund burned
	CostVoid           = "void"             // a released nonce's void transaction
	CostSweepBurn      = "sweep_burn"       // TRX burned for a TRON sweep (energy, bandwidth, account creation)
	CostTopUpBurn      = "topup_burn"       // TRX burned by a TRON top-up
	// CostPayoutBurnExcess: what a TRX payout or refund burned beyond the
	// network fee its merchant was charged when it was signed (bandwidth
	// that was free then and burned when it was mined), or all it burned
	// when it failed on chain.
	CostPayoutBurnExcess = "payout_burn_excess"
)

// NetworkCostPaid records a network fee that a transaction of the gateway
// paid from its own coins, once the chain says what it paid (a receipt,
// a transaction's info). Its coins left the chain's holdings to the
// network (NetworkFeeAccount, as a payout's fee does), at the operator's
// expense. One per transaction: its id derives from the chain and txid.
type NetworkCostPaid struct {
	CostID   string    `json:"cost_id"` // <chain>:<txid>
	Chain    Chain     `json:"chain"`
	TxID     string    `json:"txid"`
	Kind     string    `json:"kind"`
	Asset    string    `json:"asset"`
	Amount   Amount    `json:"amount"`
	From     string    `json:"from"`          // the address that paid
	Ref      string    `json:"ref,omitempty"` // the sweep or payout it served
	Block    uint64    `json:"block,omitempty"`
	PaidAt   time.Time `json:"paid_at"`
	Postings []Posting `json:"postings"`
}

func (NetworkCostPaid) EventType() string           { return TypeNetworkCostPaid }
func (e NetworkCostPaid) LedgerPostings() []Posting { return e.Postings }

// NetworkCostStream is the stream of one transaction's cost.
func NetworkCostStream(chain Chain, txid string) string {
	return "networkcost-" + string(chain) + "-" + strings.ToLower(txid)
}

// NewNetworkCost decides the cost event of a transaction that paid amount
// of asset. Errors: ErrValidation, ErrInvalidAmount.
func NewNetworkCost(chain Chain, txid, kind string, asset Asset, amount Amount, from, ref string, block uint64, now time.Time) (NetworkCostPaid, error) {
	if txid == "" || kind == "" || from == "" {
		return NetworkCostPaid{}, fmt.Errorf("%w: a network cost needs a txid, a kind and the paying address", ErrValidation)
	}
	if amount.IsNegative() {
		return NetworkCostPaid{}, fmt.Errorf("%w: negative network cost %s", ErrInvalidAmount, amount)
	}
	if _, err := amount.BaseUnits(asset.Decimals); err != nil {
		return NetworkCostPaid{}, err
	}
	e := NetworkCostPaid{CostID: string(chain) + ":" + strings.ToLower(txid), Chain: chain, TxID: txid, Kind: kind, Asset: asset.Code,
		Amount: amount, From: from, Ref: ref, Block: block, PaidAt: now.UTC()}
	if !amount.IsZero() {
		e.Postings = mustBalance([]Posting{
			{Account: OperatorNetworkCostsAccount, Asset: asset.Code, Amount: amount.Neg()},
			{Account: NetworkFeeAccount, Asset: asset.Code, Amount: amount},
		})
	}
	return e, nil
}
