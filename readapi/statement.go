package readapi

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// statementBatch is how many events one read of a statement returns.
const statementBatch = 5000

// A period statement is read from the log alone: every posting of a money
// event recorded before From is in the opening balance, every one recorded
// in [From, To) is a movement of its kind, and closing = opening +
// movements. The period is by recorded time (the log's own clock, kept by
// copy-events), so a statement of a closed month never changes; the hash
// chain's link at the end of what was read is carried, so a later rewrite
// of that past is detected (picd audit --verify-chain --at).

// OperatorOwner is the owner of the operator's accounts in a statement.
const OperatorOwner = "operator"

// StatementOptions select a statement.
type StatementOptions struct {
	From, To time.Time
	// Merchant limits the statement to one merchant's accounts (and leaves
	// the operator's out); empty: every merchant and the operator.
	Merchant string
}

// Statement is a period statement.
type Statement struct {
	From     time.Time          `json:"from"`
	To       time.Time          `json:"to"`
	Accounts []StatementAccount `json:"accounts"`
	// Events is how many money events moved an account of the statement
	// in the period.
	Events int `json:"events"`
	// LogEnd is the hash chain's last link the statement read (nil on a
	// store without a chain): the log up to it is what the statement says.
	LogEnd *ChainPoint `json:"log_end,omitempty"`
}

// ChainPoint is a link of the hash chain.
type ChainPoint struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// StatementAccount is one account's period in one asset.
type StatementAccount struct {
	Owner     string        `json:"owner"` // a merchant id, or "operator"
	Account   string        `json:"account"`
	Asset     string        `json:"asset"`
	Opening   domain.Amount `json:"opening"`
	Movements []Movement    `json:"movements"`
	Closing   domain.Amount `json:"closing"`
}

// Movement is the sum of one kind of posting in the period.
type Movement struct {
	Kind   string        `json:"kind"`
	Amount domain.Amount `json:"amount"`
	Count  int           `json:"count"`
}

// MovementKind names what a posting of e is, for a statement: the event's
// kind, with payouts told apart from refunds and withdrawals.
func MovementKind(e domain.Event) string {
	switch c := e.(type) {
	case domain.DepositDetected:
		return "deposits"
	case domain.DepositConfirmed:
		return "fees_and_confirmations"
	case domain.DepositFinalized:
		return "finality"
	case domain.DepositReverted:
		return "reversals"
	case domain.ConversionExecuted:
		return "conversions"
	case domain.PayoutRequested:
		return string(c.Kind) + "_requested"
	case domain.PayoutSigned:
		return "refund_fees_reserved"
	case domain.PayoutConfirmed:
		if c.Kind == domain.PayoutKindRefund {
			return "refunds_sent"
		}
		return "payouts_sent"
	case domain.PayoutFailed, domain.PayoutCanceled:
		return "payouts_released"
	case domain.NetworkCostPaid:
		return "network_costs"
	}
	return e.EventType()
}

// statementOwner is the owner of an account in a statement, or "" for an
// account no statement shows (external, network:fees).
func statementOwner(account string) string {
	if strings.HasPrefix(account, "merchant:") {
		id, _, _ := strings.Cut(strings.TrimPrefix(account, "merchant:"), ":")
		return id
	}
	if account == domain.FeeAccount || account == domain.OperatorNetworkCostsAccount || account == domain.NetworkFeeRevenueAccount {
		return OperatorOwner
	}
	return ""
}

type stmtKey struct{ account, asset string }

// BuildStatement reads the log from its start and returns the statement
// of [From, To). Errors: the store's, or an event that does not decode.
func BuildStatement(ctx context.Context, store eventstore.Store, opt StatementOptions) (Statement, error) {
	if !opt.From.Before(opt.To) {
		return Statement{}, fmt.Errorf("%w: a statement's from (%s) must be before its to (%s)", domain.ErrValidation, opt.From, opt.To)
	}
	st := Statement{From: opt.From.UTC(), To: opt.To.UTC()}
	type acc struct {
		StatementAccount
		moves map[string]*Movement
	}
	accounts := map[stmtKey]*acc{}
	apply := func(rec eventstore.RecordedEvent) error {
		if !rec.RecordedAt.Before(opt.To) {
			return nil
		}
		if !isMoneyType(rec.Type) {
			return nil
		}
		ev, err := domain.DecodeStored(rec.Type, rec.Data, rec.Metadata)
		if err != nil {
			return fmt.Errorf("statement: event %s: %w", rec.ID, err)
		}
		m, ok := ev.(domain.MoneyEvent)
		if !ok {
			return nil
		}
		inPeriod := !rec.RecordedAt.Before(opt.From)
		moved := false
		for _, p := range m.LedgerPostings() {
			owner := statementOwner(p.Account)
			if owner == "" || (opt.Merchant != "" && owner != opt.Merchant) {
				continue
			}
			a := accounts[stmtKey{p.Account, p.Asset}]
			if a == nil {
				a = &acc{StatementAccount: StatementAccount{Owner: owner, Account: p.Account, Asset: p.Asset}, moves: map[string]*Movement{}}
				accounts[stmtKey{p.Account, p.Asset}] = a
			}
			if !inPeriod {
				a.Opening = a.Opening.Add(p.Amount)
				continue
			}
			kind := MovementKind(ev)
			mv := a.moves[kind]
			if mv == nil {
				mv = &Movement{Kind: kind}
				a.moves[kind] = mv
			}
			mv.Amount = mv.Amount.Add(p.Amount)
			mv.Count++
			moved = true
		}
		if moved {
			st.Events++
		}
		return nil
	}
	if c, ok := store.(eventstore.Chained); ok {
		var after uint64
		var last []byte
		for {
			links, err := c.ReadChain(ctx, after, statementBatch)
			if err != nil {
				return Statement{}, err
			}
			for _, l := range links {
				if err := apply(l.Event); err != nil {
					return Statement{}, err
				}
				after, last = l.Seq, l.Hash
			}
			if len(links) < statementBatch {
				break
			}
		}
		if after > 0 {
			st.LogEnd = &ChainPoint{Seq: after, Hash: hex.EncodeToString(last)}
		}
	} else {
		pos := eventstore.Start
		for {
			recs, err := store.ReadAll(ctx, pos, statementBatch)
			if err != nil {
				return Statement{}, err
			}
			for _, r := range recs {
				if err := apply(r); err != nil {
					return Statement{}, err
				}
				pos = r.Position
			}
			if len(recs) < statementBatch {
				break
			}
		}
	}
	for _, a := range accounts {
		a.Closing = a.Opening
		for _, mv := range a.moves {
			a.Closing = a.Closing.Add(mv.Amount)
			a.Movements = append(a.Movements, *mv)
		}
		sort.Slice(a.Movements, func(i, j int) bool { return a.Movements[i].Kind < a.Movements[j].Kind })
		if a.Movements == nil {
			a.Movements = []Movement{}
		}
		st.Accounts = append(st.Accounts, a.StatementAccount)
	}
	sort.Slice(st.Accounts, func(i, j int) bool {
		x, y := st.Accounts[i], st.Accounts[j]
		if (x.Owner == OperatorOwner) != (y.Owner == OperatorOwner) {
			return y.Owner == OperatorOwner // merchants first
		}
		if x.Account != y.Account {
			return x.Account < y.Account
		}
		return x.Asset < y.Asset
	})
	if st.Accounts == nil {
		st.Accounts = []StatementAccount{}
	}
	return st, nil
}

// isMoneyType skips the decoding of events that never post.
func isMoneyType(t string) bool {
	switch t {
	case domain.TypeDepositDetected, domain.TypeDepositConfirmed, domain.TypeDepositFinalized, domain.TypeDepositReverted,
		domain.TypeConversionExecuted, domain.TypeConversionAbandoned, domain.TypePaymentConverted,
		domain.TypePayoutRequested, domain.TypePayoutSigned, domain.TypePayoutConfirmed, domain.TypePayoutFailed, domain.TypePayoutCanceled,
		domain.TypeNetworkCostPaid:
		return true
	}
	return false
}

// LogStatements answers statements from an event store (GET
// /v1/statements, picd audit --from --to).
type LogStatements struct{ Store eventstore.Store }

// Statement is one merchant's statement of [from, to).
func (l LogStatements) Statement(ctx context.Context, merchantID string, from, to time.Time) (Statement, error) {
	return BuildStatement(ctx, l.Store, StatementOptions{From: from, To: to, Merchant: merchantID})
}
