package domain

import (
	"encoding/json"
	"fmt"
)

// FundsSnapshotKind names the shape that MarshalSnapshot writes. Change it
// whenever Funds.Apply folds differently: snapshots of another kind are
// not read, and their streams are folded from the start again.
const FundsSnapshotKind = "funds/1"

// fundsSnapshot is everything Funds holds.
type fundsSnapshot struct {
	Debited Amount                       `json:"debited"`
	Refunds map[string][]PayoutRequested `json:"refunds,omitempty"`
}

// MarshalSnapshot writes the fold's state, for UnmarshalFundsSnapshot.
func (f *Funds) MarshalSnapshot() ([]byte, error) {
	return json.Marshal(fundsSnapshot{Debited: f.debited, Refunds: f.refunds})
}

// UnmarshalFundsSnapshot reads what MarshalSnapshot wrote. Errors: the
// data is not such a snapshot.
func UnmarshalFundsSnapshot(data []byte) (*Funds, error) {
	var s fundsSnapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("funds snapshot: %w", err)
	}
	return &Funds{debited: s.Debited, refunds: s.Refunds}, nil
}
