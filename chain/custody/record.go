package custody

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/acceptcryptohere/gateway/domain"
)

// Record is the signer's own append-only record, in SQLite beside its
// seed: every transaction it signed (never updated or deleted: triggers
// refuse it), the payouts it held at a limit, and the operator's approvals.
type Record struct{ db *sql.DB }

const recordSchema = `
CREATE TABLE IF NOT EXISTS signed (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	chain TEXT NOT NULL, purpose TEXT NOT NULL, payout_id TEXT NOT NULL, asset TEXT NOT NULL, amount TEXT NOT NULL,
	from_index INTEGER NOT NULL, txid TEXT NOT NULL, raw BLOB NOT NULL, signed_at INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS signed_one_per_payout ON signed (payout_id) WHERE purpose = 'payout';
CREATE INDEX IF NOT EXISTS signed_by_asset ON signed (asset, signed_at);
CREATE TRIGGER IF NOT EXISTS signed_no_update BEFORE UPDATE ON signed BEGIN SELECT RAISE(ABORT, 'the signing record is append-only'); END;
CREATE TRIGGER IF NOT EXISTS signed_no_delete BEFORE DELETE ON signed BEGIN SELECT RAISE(ABORT, 'the signing record is append-only'); END;
CREATE TABLE IF NOT EXISTS held (
	payout_id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL, asset TEXT NOT NULL, amount TEXT NOT NULL, to_address TEXT NOT NULL,
	reason TEXT NOT NULL, held_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS approvals (payout_id TEXT PRIMARY KEY, approved_at INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS approvals_no_update BEFORE UPDATE ON approvals BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;
CREATE TRIGGER IF NOT EXISTS approvals_no_delete BEFORE DELETE ON approvals BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;
`

// OpenRecord opens (creating, 0600) the record at path.
func OpenRecord(path string) (*Record, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("signing record: %w", err)
	}
	f.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("signing record: %w", err)
	}
	if _, err := db.Exec(recordSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("signing record %s: %w", path, err)
	}
	return &Record{db: db}, nil
}

// Close closes the record.
func (r *Record) Close() error { return r.db.Close() }

// Signature is one row of the record.
type Signature struct {
	Chain     domain.Chain
	Purpose   string
	PayoutID  string // the payout, or the sender's reference of an internal move
	Asset     string
	Amount    domain.Amount // a payout's amount as the log requested it; 0 for internal moves
	FromIndex int64
	TxID      string
	Raw       []byte
	SignedAt  time.Time
	Sequence  int64
}

func (r *Record) append(ctx context.Context, s Signature) error {
	_, err := r.db.ExecContext(ctx, `INSERT INTO signed (chain, purpose, payout_id, asset, amount, from_index, txid, raw, signed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, string(s.Chain), s.Purpose, s.PayoutID, s.Asset, s.Amount.String(), s.FromIndex, s.TxID, s.Raw,
		s.SignedAt.UnixMilli())
	return err
}

// payout is the transaction signed for a payout, if any.
func (r *Record) payout(ctx context.Context, payoutID string) (Signature, bool, error) {
	var s Signature
	var amount string
	var at int64
	err := r.db.QueryRowContext(ctx, `SELECT chain, asset, amount, from_index, txid, raw, signed_at FROM signed WHERE purpose = 'payout' AND payout_id = ?`,
		payoutID).Scan(&s.Chain, &s.Asset, &amount, &s.FromIndex, &s.TxID, &s.Raw, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Signature{}, false, nil
	}
	if err != nil {
		return Signature{}, false, err
	}
	s.Purpose, s.PayoutID, s.Amount, s.SignedAt = PurposePayout, payoutID, domain.MustAmount(amount), time.UnixMilli(at)
	return s, true, nil
}

// signedSince sums the payouts of asset signed at or after since.
func (r *Record) signedSince(ctx context.Context, asset string, since time.Time) (domain.Amount, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT amount FROM signed WHERE purpose = 'payout' AND asset = ? AND signed_at >= ?`, asset, since.UnixMilli())
	if err != nil {
		return domain.Amount{}, err
	}
	defer rows.Close()
	sum := domain.Amount{}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return domain.Amount{}, err
		}
		sum = sum.Add(domain.MustAmount(a))
	}
	return sum, rows.Err()
}

// Held is a payout waiting for approval.
type Held struct {
	PayoutID, MerchantID, Asset, ToAddress, Reason string
	Amount                                         domain.Amount
	HeldAt                                         time.Time
}

func (r *Record) hold(ctx context.Context, h Held) error {
	_, err := r.db.ExecContext(ctx, `INSERT INTO held (payout_id, merchant_id, asset, amount, to_address, reason, held_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (payout_id) DO UPDATE SET reason = excluded.reason`, h.PayoutID, h.MerchantID, h.Asset, h.Amount.String(), h.ToAddress, h.Reason,
		h.HeldAt.UnixMilli())
	return err
}

func (r *Record) approved(ctx context.Context, payoutID string) (bool, error) {
	var n int
	err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM approvals WHERE payout_id = ?`, payoutID).Scan(&n)
	return n > 0, err
}

// ErrNotHeld: approve names a payout the signer does not hold.
var ErrNotHeld = errors.New("custody: the signer holds no such payout")

// Approve lets a held payout past the limits; the processor's next ask
// (every few seconds) gets it signed. Approving twice is no error.
func (r *Record) Approve(ctx context.Context, payoutID string, now time.Time) (Held, error) {
	pending, err := r.Pending(ctx, payoutID)
	if err != nil {
		return Held{}, err
	}
	if len(pending) == 0 {
		return Held{}, fmt.Errorf("%w: %s (picd signer pending lists them)", ErrNotHeld, payoutID)
	}
	_, err = r.db.ExecContext(ctx, `INSERT INTO approvals (payout_id, approved_at) VALUES (?, ?) ON CONFLICT (payout_id) DO NOTHING`, payoutID, now.UnixMilli())
	return pending[0], err
}

// Pending lists held payouts not yet signed (only payoutID's, if given),
// approved or not.
func (r *Record) Pending(ctx context.Context, payoutID string) ([]Held, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT payout_id, merchant_id, asset, amount, to_address, reason, held_at FROM held h
		WHERE (? = '' OR payout_id = ?) AND NOT EXISTS (SELECT 1 FROM signed s WHERE s.purpose = 'payout' AND s.payout_id = h.payout_id)
		ORDER BY held_at`, payoutID, payoutID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Held
	for rows.Next() {
		var h Held
		var amount string
		var at int64
		if err := rows.Scan(&h.PayoutID, &h.MerchantID, &h.Asset, &amount, &h.ToAddress, &h.Reason, &at); err != nil {
			return nil, err
		}
		h.Amount, h.HeldAt = domain.MustAmount(amount), time.UnixMilli(at)
		out = append(out, h)
	}
	return out, rows.Err()
}

// Signatures lists the record from sequence after, in order.
func (r *Record) Signatures(ctx context.Context, after int64, limit int) ([]Signature, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT seq, chain, purpose, payout_id, asset, amount, from_index, txid, raw, signed_at FROM signed
		WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Signature
	for rows.Next() {
		var s Signature
		var amount string
		var at int64
		if err := rows.Scan(&s.Sequence, &s.Chain, &s.Purpose, &s.PayoutID, &s.Asset, &amount, &s.FromIndex, &s.TxID, &s.Raw, &at); err != nil {
			return nil, err
		}
		s.Amount, s.SignedAt = domain.MustAmount(amount), time.UnixMilli(at)
		out = append(out, s)
	}
	return out, rows.Err()
}
