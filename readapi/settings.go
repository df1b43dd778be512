package readapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/acceptcryptohere/gateway/domain"
)

// ConsolidateTo is the merchant's consolidate_to setting ("" for none), as
// the read model has it. Errors: domain.ErrNotFound.
func (s *SQL) ConsolidateTo(ctx context.Context, merchantID string) (string, error) {
	var gen uint64
	if s.Accounts != nil {
		to, g, ok := s.Accounts.get(merchantID)
		if ok {
			return to, nil
		}
		gen = g
	}
	var to string
	err := s.queryRow(ctx, `SELECT consolidate_to FROM merchants WHERE merchant_id = ?`, merchantID).Scan(&to)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("merchant %s: %w", merchantID, domain.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("consolidate_to: %w", err)
	}
	if s.Accounts != nil {
		s.Accounts.put(merchantID, to, gen)
	}
	return to, nil
}
