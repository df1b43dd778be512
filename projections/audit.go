package projections

import (
	"context"
	"fmt"
	"sort"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// AuditReport is what an auditor gets from the log alone: the ledger per
// account and asset, and every disagreement with the read models.
type AuditReport struct {
	Events      int
	MoneyEvents int
	FeesChecked int
	// Ledger maps account -> asset -> sum of postings.
	Ledger   map[string]map[string]domain.Amount
	Problems []string
}

// OK reports whether the log and the read models agree.
func (r AuditReport) OK() bool { return len(r.Problems) == 0 }

// Audit reads the whole log (up to its current end) and checks that every
// money event's postings sum to zero per asset, that every recorded fee
// recomputes from its inputs, and that the balances read model equals the
// sums of the merchants' postings. The read model must be caught up first.
func Audit(ctx context.Context, store eventstore.Store, db DB) (AuditReport, error) {
	rep := AuditReport{Ledger: map[string]map[string]domain.Amount{}}
	pos := eventstore.Start
	for {
		recs, err := store.ReadAll(ctx, pos, 1000)
		if err != nil {
			return rep, err
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			pos = rec.Position
			rep.Events++
			e, err := domain.Decode(rec.Type, rec.Data)
			if err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("event %s: %v", rec.ID, err))
				continue
			}
			rep.check(rec, e)
		}
	}
	return rep, rep.compareBalances(ctx, db)
}

func (rep *AuditReport) check(rec eventstore.RecordedEvent, e domain.Event) {
	if c, ok := e.(domain.InvoiceCreated); ok {
		rep.verifyFee(rec, c.Fee)
	}
	if c, ok := e.(domain.DepositConfirmed); ok {
		rep.verifyFee(rec, c.Fee)
		if !c.Net.Add(c.Fee.Fee).Equal(c.Amount) || !c.Fee.Base.Equal(c.Amount) {
			rep.Problems = append(rep.Problems, fmt.Sprintf("event %s: net %s + fee %s != amount %s", rec.ID, c.Net, c.Fee.Fee, c.Amount))
		}
	}
	m, ok := e.(domain.MoneyEvent)
	if !ok {
		return
	}
	rep.MoneyEvents++
	if err := domain.CheckBalanced(m.LedgerPostings()); err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("event %s (%s): %v", rec.ID, rec.Type, err))
	}
	for _, p := range m.LedgerPostings() {
		if rep.Ledger[p.Account] == nil {
			rep.Ledger[p.Account] = map[string]domain.Amount{}
		}
		rep.Ledger[p.Account][p.Asset] = rep.Ledger[p.Account][p.Asset].Add(p.Amount)
	}
}

func (rep *AuditReport) verifyFee(rec eventstore.RecordedEvent, f domain.FeeCalc) {
	rep.FeesChecked++
	if err := f.Verify(); err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("event %s: %v", rec.ID, err))
	}
}

func (rep *AuditReport) compareBalances(ctx context.Context, db DB) error {
	rows, err := db.Read.QueryContext(ctx, `SELECT merchant_id, asset, available, pending FROM balances`)
	if err != nil {
		return fmt.Errorf("audit: balances: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var merchantID, asset, available, pending string
		if err := rows.Scan(&merchantID, &asset, &available, &pending); err != nil {
			return err
		}
		for bucket, got := range map[string]string{"available": available, "pending": pending} {
			account := "merchant:" + merchantID + ":" + bucket
			seen[account+"/"+asset] = true
			want := rep.Ledger[account][asset]
			if !want.Equal(domain.MustAmount(got)) {
				rep.Problems = append(rep.Problems, fmt.Sprintf("balance %s %s: read model %s, log %s", account, asset, got, want))
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, account := range rep.Accounts() {
		if _, _, isMerchant := merchantAccount(account); !isMerchant {
			continue
		}
		for asset, sum := range rep.Ledger[account] {
			if !seen[account+"/"+asset] && !sum.IsZero() {
				rep.Problems = append(rep.Problems, fmt.Sprintf("balance %s %s: missing from the read model, log says %s", account, asset, sum))
			}
		}
	}
	return nil
}

// Accounts lists the ledger's accounts in order.
func (r AuditReport) Accounts() []string {
	out := make([]string, 0, len(r.Ledger))
	for a := range r.Ledger {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
