// Package reserves compares what the ledger says the gateway holds on a
// chain with what the chain's node says its addresses hold (a proof of
// reserves, picd audit --chain).
package reserves

import (
	"math/big"
	"sort"

	"github.com/acceptcryptohere/gateway/domain"
)

// Roles of an address in a comparison.
const (
	RoleDeposit = "deposit"
	RoleHot     = "hot wallet"
	RoleOutput  = "unspent output"
	// RoleRest is what the ledger holds that no address accounts for.
	RoleRest = "unattributed"
)

// Address is one address's two sides of one asset.
type Address struct {
	Address string        `json:"address"`
	Role    string        `json:"role"`
	Ledger  domain.Amount `json:"ledger"`
	Chain   domain.Amount `json:"chain"`
	Diff    domain.Amount `json:"difference"` // chain − ledger
	Note    string        `json:"note,omitempty"`
}

// Asset is the comparison of one asset at one pinned block.
type Asset struct {
	Asset     string        `json:"asset"`
	Height    uint64        `json:"height"`
	BlockHash string        `json:"block_hash,omitempty"`
	Ledger    domain.Amount `json:"ledger"` // what the log says is held
	Chain     domain.Amount `json:"chain"`  // what the node says our addresses hold
	Diff      domain.Amount `json:"difference"`
	// Float is what the hot wallet holds beyond the ledger: coins the
	// operator put there (gas money) that no event records.
	Float     domain.Amount `json:"operator_float"`
	Addresses int           `json:"addresses"`
	// Differ lists every address whose two sides differ, largest first.
	Differ []Address `json:"differ"`
	OK     bool      `json:"ok"`
}

// Input is one asset's two sides in base units. Addresses are compared
// as given (callers normalise their case).
type Input struct {
	Asset    string
	Decimals int32
	Held     domain.Amount // the ledger's total for the asset
	// Expected is what each deposit address (or unspent output) should
	// hold by the gateway's own records; the hot wallet holds the rest.
	Expected map[string]*big.Int
	Role     string // of the Expected entries
	Hot      string // "" when the chain has no hot wallet
	// Chain is what the node reports for every address, hot wallet included.
	Chain map[string]*big.Int
	// Notes explain an address (a sweep in flight, an unmatched deposit).
	Notes map[string]string
	// Float, for a chain without a hot wallet, is what the Expected
	// entries hold beyond the ledger by the gateway's own records: coins
	// of the operator's among them (Bitcoin: unmatched deposits taken into
	// the wallet). They must hold exactly Held + Float. nil: none.
	Float *big.Int
}

// Compare reconciles one asset: every address must hold exactly what
// the records say; the hot wallet at least the rest of the ledger (its
// surplus is the operator's float). Without a hot wallet, the rest must
// be zero, or exactly the operator's Float the records name.
func Compare(in Input) Asset {
	heldUnits, err := in.Held.BaseUnits(in.Decimals)
	if err != nil { // more decimals than the asset has: nothing matches
		heldUnits = new(big.Int)
	}
	a := Asset{Asset: in.Asset, Ledger: in.Held, Addresses: len(in.Chain)}
	rest := new(big.Int).Set(heldUnits)
	chainTotal := new(big.Int)
	for _, v := range in.Chain {
		chainTotal.Add(chainTotal, v)
	}
	amount := func(v *big.Int) domain.Amount { return domain.FromBaseUnits(v, in.Decimals) }
	seen := map[string]bool{}
	for addr, want := range in.Expected {
		seen[addr] = true
		rest.Sub(rest, want)
		got := in.Chain[addr]
		if got == nil {
			got = new(big.Int)
		}
		if got.Cmp(want) != 0 {
			a.Differ = append(a.Differ, Address{Address: addr, Role: in.Role, Ledger: amount(want), Chain: amount(got),
				Diff: amount(new(big.Int).Sub(got, want)), Note: in.Notes[addr]})
		}
	}
	// Addresses with coins the records never expected.
	for addr, got := range in.Chain {
		if seen[addr] || addr == in.Hot || got.Sign() == 0 {
			continue
		}
		a.Differ = append(a.Differ, Address{Address: addr, Role: in.Role, Ledger: amount(new(big.Int)), Chain: amount(got),
			Diff: amount(got), Note: in.Notes[addr]})
	}
	switch hot := in.Chain[in.Hot]; {
	case in.Hot == "":
		if in.Float != nil {
			a.Float = amount(in.Float)
			rest.Add(rest, in.Float)
		}
		if rest.Sign() != 0 {
			a.Differ = append(a.Differ, Address{Address: "-", Role: RoleRest, Ledger: amount(rest), Chain: amount(new(big.Int)),
				Diff: amount(new(big.Int).Neg(rest))})
		}
	default:
		if hot == nil {
			hot = new(big.Int)
		}
		d := new(big.Int).Sub(hot, rest)
		if d.Sign() >= 0 {
			a.Float = amount(d)
		} else {
			a.Differ = append(a.Differ, Address{Address: in.Hot, Role: RoleHot, Ledger: amount(rest), Chain: amount(hot), Diff: amount(d),
				Note: in.Notes[in.Hot]})
		}
	}
	a.Chain = amount(chainTotal)
	a.Diff = a.Chain.Sub(a.Ledger)
	sort.Slice(a.Differ, func(i, j int) bool {
		x, y := a.Differ[i].Diff.Decimal().Abs(), a.Differ[j].Diff.Decimal().Abs()
		if c := x.Cmp(y); c != 0 {
			return c > 0
		}
		return a.Differ[i].Address < a.Differ[j].Address
	})
	if a.Differ == nil {
		a.Differ = []Address{}
	}
	a.OK = len(a.Differ) == 0
	return a
}
