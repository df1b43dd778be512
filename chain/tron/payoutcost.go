package tron

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// A payout's transaction burns TRX from the hot wallet. The part no
// merchant pays is the operator's cost (money rule 7): all of it for a
// token payout (its fee in the token is the operator's revenue); for a TRX
// payout what it burned beyond the fee it was signed with (up to it the
// fee is the merchant's: PayoutConfirmed, with PaidFee), all of it when it
// failed on chain (the payout fails and the merchant gets everything
// back). What the chain said is first stored beside the transaction
// (tron_payout_txs.burned_sun), then booked; a cost the log refused stays
// due and BookPayoutCosts appends it again, each sweep pass. The event's
// id derives from the txid, so a repeat adds nothing.

// payoutCostSun is the operator's part of what a payout's transaction
// burned: native tells a TRX payout, feeTRX is the fee it was signed with
// (tron_payout_txs.fee_trx).
func payoutCostSun(native bool, feeTRX string, burned int64, failed bool) (int64, error) {
	if burned <= 0 || !native || failed {
		return max(0, burned), nil
	}
	signed, err := domain.ParseAmount(feeTRX, 6)
	if err != nil {
		return 0, fmt.Errorf("fee_trx %q: %w", feeTRX, err)
	}
	units, err := signed.BaseUnits(6)
	if err != nil {
		return 0, err
	}
	return max(0, burned-units.Int64()), nil
}

// notePayoutBurn stores what a payout's transaction, now in a block,
// burned (info), then books the operator's part of it.
func (s *Sender) notePayoutBurn(ctx context.Context, info TransactionInfo) error {
	failed := 0
	if info.Failed() {
		failed = 1
	}
	if _, err := s.db.Write.ExecContext(ctx, s.db.Q(`UPDATE tron_payout_txs SET burned_sun = ?, tx_failed = ?, mined_block = ?
		WHERE txid = ? AND cost_booked = 0`), max(0, info.Fee), failed, max(0, info.BlockNumber), info.ID); err != nil {
		return fmt.Errorf("tron payout burn: %w", err)
	}
	return s.bookPayoutCost(ctx, info.ID)
}

// bookPayoutCost appends the operator's cost of a payout transaction whose
// burn is stored, and marks it booked once the log has it (or none is owed).
func (s *Sender) bookPayoutCost(ctx context.Context, txid string) error {
	if s.cfg.Costs == nil || s.native == "" {
		return nil
	}
	var payoutID, asset, feeTRX string
	var burned, block int64
	var failed, booked int
	err := s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT payout_id, asset, fee_trx, burned_sun, tx_failed, mined_block, cost_booked
		FROM tron_payout_txs WHERE txid = ?`), txid).Scan(&payoutID, &asset, &feeTRX, &burned, &failed, &block, &booked)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (burned < 0 || booked == 1)) {
		return nil // not ours, not mined yet, or booked
	}
	if err != nil {
		return err
	}
	cost, err := payoutCostSun(asset == s.native, feeTRX, burned, failed == 1)
	if err != nil {
		return fmt.Errorf("tron_payout_txs %s: %w", txid, err)
	}
	if cost > 0 {
		kind := domain.CostTokenPayoutGas
		if asset == s.native {
			kind = domain.CostPayoutBurnExcess
		}
		if err := s.cfg.Costs(ctx, commands.RecordNetworkCost{Chain: domain.ChainTron, TxID: txid, Kind: kind, Asset: s.native,
			Amount: domain.FromBaseUnits(big.NewInt(cost), 6), From: s.hot, Ref: payoutID, Block: uint64(block)}); err != nil {
			return err
		}
	}
	_, err = s.db.Write.ExecContext(ctx, s.db.Q(`UPDATE tron_payout_txs SET cost_booked = 1 WHERE txid = ?`), txid)
	return err
}

// maxPayoutCostsPerPass bounds the due costs one BookPayoutCosts handles.
const maxPayoutCostsPerPass = 500

// BookPayoutCosts appends the payout costs tron_payout_txs holds as due:
// an append that failed, or rows whose burn is not known yet (from before
// it was stored, or a payout confirmed while the log refused its cost),
// which it asks the node for. A transaction the node does not know past
// its expiration never will be mined: it burned nothing, and is no longer
// asked for. It runs with every sweep pass (SweepDeposits).
func (s *Sender) BookPayoutCosts(ctx context.Context) error {
	if s.cfg.Costs == nil || s.native == "" {
		return nil
	}
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT txid, burned_sun, expiration_ms FROM tron_payout_txs WHERE cost_booked = 0
		ORDER BY built_at LIMIT ?`), maxPayoutCostsPerPass)
	if err != nil {
		return fmt.Errorf("tron: payout costs due: %w", err)
	}
	type due struct {
		txid             string
		burned, expireMs int64
	}
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.txid, &d.burned, &d.expireMs); err != nil {
			rows.Close()
			return err
		}
		list = append(list, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var first error
	for _, d := range list {
		var err error
		if d.burned >= 0 {
			err = s.bookPayoutCost(ctx, d.txid)
		} else {
			var info TransactionInfo
			info, err = s.node.TransactionInfoByID(ctx, d.txid)
			switch {
			case err == nil:
				err = s.notePayoutBurn(ctx, info)
			case errors.Is(err, ErrNotFound) && d.expireMs+payoutExpiryMarginMs < s.cfg.Now().UnixMilli():
				// Never mined (or the node no longer knows it): nothing
				// to book; the burn stays unknown, so the audit does not
				// hold the log to it.
				_, err = s.db.Write.ExecContext(ctx, s.db.Q(`UPDATE tron_payout_txs SET cost_booked = 1 WHERE txid = ?`), d.txid)
			case errors.Is(err, ErrNotFound):
				err = nil // in no block yet
			}
		}
		if err != nil && first == nil {
			first = fmt.Errorf("tron: booking the network cost of payout transaction %s: %w", d.txid, err)
		}
	}
	return first
}

// payoutExpiryMarginMs is how long past its expiration a transaction in no
// block is taken as never mined: a solidified block is about a minute deep.
const payoutExpiryMarginMs = 10 * 60 * 1000

// PayoutCostProblems lists the payout transactions whose burn the sender
// stored and whose operator's part the log books otherwise (costOf, in
// sun): a NetworkCostPaid missing (its append failed and the sender has not
// appended it again yet) or wrong. The hot wallet paid it, so without this
// check a missing cost would hide in the operator float.
func PayoutCostProblems(ctx context.Context, db sqldb.DB, native string, costOf func(txid string) *big.Int) ([]string, error) {
	rows, err := db.Read.QueryContext(ctx, `SELECT payout_id, txid, asset, fee_trx, burned_sun, tx_failed, cost_booked FROM tron_payout_txs
		WHERE burned_sun >= 0 ORDER BY built_at`)
	if err != nil {
		return nil, fmt.Errorf("tron: payout costs: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var payoutID, txid, asset, feeTRX string
		var burned int64
		var failed, booked int
		if err := rows.Scan(&payoutID, &txid, &asset, &feeTRX, &burned, &failed, &booked); err != nil {
			return nil, err
		}
		want, err := payoutCostSun(asset == native, feeTRX, burned, failed == 1)
		if err != nil {
			return nil, fmt.Errorf("tron_payout_txs %s: %w", txid, err)
		}
		if got := costOf(txid); got.Cmp(big.NewInt(want)) != 0 {
			due := ""
			if booked == 0 {
				due = " (due: the sender appends it again)"
			}
			out = append(out, fmt.Sprintf("payout %s %s (%s) burned %d sun, of which %d the operator's; the log books %s%s",
				txid, payoutID, asset, burned, want, got, due))
		}
	}
	return out, rows.Err()
}
