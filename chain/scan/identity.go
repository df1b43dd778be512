package scan

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/acceptcryptohere/gateway/sqldb"
)

// ErrWrongNode: the node follows another chain than the one configured or
// recorded. A Scanner that finds it stops scanning (nothing is reported,
// confirmed or reverted) until the node's identity matches again.
var ErrWrongNode = errors.New("node follows another chain")

// MismatchError says what the node was expected to be and what it is. A
// Chain's Identity returns one when the node is not of the configured
// network (Bitcoin's genesis, Ethereum's configured chain id); the Scanner
// makes one when the identity differs from the first one recorded.
type MismatchError struct {
	Chain    string
	Expected string
	Found    string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s node identity mismatch: expected %s, found %s", e.Chain, e.Expected, e.Found)
}

func (e *MismatchError) Is(target error) bool { return target == ErrWrongNode }

// IdentityState is a State that keeps the first identity seen and the
// mismatch of the moment in the database: a restart compares with the
// former, and /readyz of any process shows the latter.
type IdentityState interface {
	// RecordedIdentity is the first identity recorded; ok is false before.
	RecordedIdentity(ctx context.Context) (identity string, ok bool, err error)
	RecordIdentity(ctx context.Context, identity string, now time.Time) error
	// SetIdentityMismatch records why scanning stopped; "" clears it.
	SetIdentityMismatch(ctx context.Context, reason string, now time.Time) error
}

// IdentityTable keeps a chain's node identity in a table of one row (id
// 1): identity (the first one seen, "" before), recorded_at, mismatch
// ("" while the node matches) and updated_at, times in Unix ms. Each
// chain's migrations create it.
type IdentityTable struct {
	db    sqldb.DB
	table string
}

var _ IdentityState = IdentityTable{}

// NewIdentityTable is the table named table (an identifier of our own
// migrations, never input).
func NewIdentityTable(db sqldb.DB, table string) IdentityTable {
	return IdentityTable{db: db, table: table}
}

// WithIdentity keeps the node's identity in <prefix>_node_identity, which
// the chain's migrations create.
func (s Store) WithIdentity() Store {
	s.IdentityTable = NewIdentityTable(s.db, s.prefix+"_node_identity")
	return s
}

// The zero IdentityTable keeps nothing: the Scanner then compares with
// the first identity seen in this process.

func (t IdentityTable) RecordedIdentity(ctx context.Context) (string, bool, error) {
	if t.table == "" {
		return "", false, nil
	}
	var id string
	err := t.db.Read.QueryRowContext(ctx, `SELECT identity FROM `+t.table+` WHERE id = 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", t.table, err)
	}
	return id, id != "", nil
}

func (t IdentityTable) RecordIdentity(ctx context.Context, identity string, now time.Time) error {
	if t.table == "" {
		return nil
	}
	_, err := t.db.Write.ExecContext(ctx, t.db.Q(`INSERT INTO `+t.table+` (id, identity, recorded_at, mismatch, updated_at)
		VALUES (1, ?, ?, '', ?) ON CONFLICT (id) DO UPDATE SET identity = excluded.identity, recorded_at = excluded.recorded_at,
		updated_at = excluded.updated_at WHERE `+t.table+`.identity = ''`), identity, now.UnixMilli(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("%s: %w", t.table, err)
	}
	return nil
}

func (t IdentityTable) SetIdentityMismatch(ctx context.Context, reason string, now time.Time) error {
	if t.table == "" {
		return nil
	}
	_, err := t.db.Write.ExecContext(ctx, t.db.Q(`INSERT INTO `+t.table+` (id, identity, recorded_at, mismatch, updated_at)
		VALUES (1, '', 0, ?, ?) ON CONFLICT (id) DO UPDATE SET mismatch = excluded.mismatch, updated_at = excluded.updated_at`),
		reason, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("%s: %w", t.table, err)
	}
	return nil
}

// Mismatch reads why scanning stopped: "" while the node matches (or
// before the first check). picd's /readyz and metrics read it.
func (t IdentityTable) Mismatch(ctx context.Context) (string, error) {
	if t.table == "" {
		return "", nil
	}
	var reason string
	err := t.db.Read.QueryRowContext(ctx, `SELECT mismatch FROM `+t.table+` WHERE id = 1`).Scan(&reason)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", t.table, err)
	}
	return reason, nil
}

// identityCheck is what the Scanner remembers of its node's identity.
type identityCheck struct {
	checkedAt time.Time
	ok        bool   // the last check of the node's identity matched
	mismatch  string // the mismatch logged and stored, "" none
	recorded  string // the recorded identity, once read
	failed    bool   // the last scan failed: check before the next (a reconnect)
	scanned   bool   // a scan succeeded in this process (a stored mismatch is cleared)
	logged    bool   // the identity was logged
}

// checkIdentity compares the node's identity with the configured network
// (the Chain's own check) and with the first one recorded (recording it
// when none is). A match holds for Config.IdentityMaxAge unless force
// (after a failed scan, before a rewind, with the node behind us).
// Errors: a *MismatchError (ErrWrongNode; see stopScanning), the node's.
func (s *Scanner[B]) checkIdentity(ctx context.Context, force bool) error {
	id := &s.identity
	now := s.cfg.Now()
	if !force && id.ok && s.cfg.IdentityMaxAge > 0 && now.Sub(id.checkedAt) < s.cfg.IdentityMaxAge {
		return nil
	}
	found, err := s.chain.Identity(ctx)
	var mismatch *MismatchError
	switch {
	case errors.As(err, &mismatch):
	case err != nil:
		return err
	default:
		mismatch, err = s.compareRecorded(ctx, found, now)
		if err != nil {
			return err
		}
	}
	if mismatch != nil {
		id.ok = false
		return s.stopScanning(ctx, mismatch)
	}
	if !id.logged {
		s.log.Info(s.cfg.Name+": node identity", "identity", found)
		id.logged = true
	}
	id.ok, id.checkedAt = true, now
	return nil
}

// stopScanning logs the mismatch once (again only when it changes) and
// stores it for /readyz, and returns it: the scan stops before it reads,
// reports, confirms or reverts anything.
func (s *Scanner[B]) stopScanning(ctx context.Context, mismatch *MismatchError) error {
	id := &s.identity
	reason := mismatch.Error()
	if reason == id.mismatch {
		return mismatch
	}
	s.log.Error(s.cfg.Name+": node identity mismatch: scanning stopped until the right node answers",
		"expected", mismatch.Expected, "found", mismatch.Found)
	if ist, ok := s.st.(IdentityState); ok {
		if err := ist.SetIdentityMismatch(ctx, reason, s.cfg.Now()); err != nil {
			return errors.Join(mismatch, err)
		}
	}
	id.mismatch = reason
	return mismatch
}

// scanSucceeded clears a mismatch once a scan got through: the one this
// scanner stored (saying that scanning resumes), or one a former process
// left.
func (s *Scanner[B]) scanSucceeded(ctx context.Context) error {
	id := &s.identity
	if id.scanned && id.mismatch == "" {
		return nil
	}
	if ist, ok := s.st.(IdentityState); ok {
		if err := ist.SetIdentityMismatch(ctx, "", s.cfg.Now()); err != nil {
			return err
		}
	}
	if id.mismatch != "" {
		s.log.Info(s.cfg.Name + ": the node's chain is ours again; scanning resumes")
	}
	id.mismatch, id.scanned = "", true
	return nil
}

// compareRecorded compares found with the identity recorded first,
// recording found when there is none.
func (s *Scanner[B]) compareRecorded(ctx context.Context, found string, now time.Time) (*MismatchError, error) {
	id := &s.identity
	if id.recorded == "" {
		if ist, ok := s.st.(IdentityState); ok {
			rec, ok, err := ist.RecordedIdentity(ctx)
			if err != nil {
				return nil, err
			}
			if !ok {
				if err := ist.RecordIdentity(ctx, found, now); err != nil {
					return nil, err
				}
				s.log.Info(s.cfg.Name+": node identity recorded", "identity", found)
				rec = found
			}
			id.recorded = rec
		} else {
			id.recorded = found // kept for this process only
		}
	}
	if found != id.recorded {
		return &MismatchError{Chain: s.cfg.Name, Expected: id.recorded + " (recorded first)", Found: found}, nil
	}
	return nil, nil
}

// notOurHistory is the mismatch of a node whose chain holds none of the
// blocks kept below the checkpoint but the genesis: another chain with
// the same genesis (a fresh dev chain, a fork), or a reorg deeper than
// every block kept, which no legitimate chain makes. Either way nothing is
// rewound or reverted for it; a person decides.
func (s *Scanner[B]) notOurHistory(ctx context.Context, cp Point, kept []Point) error {
	oldest := kept[len(kept)-1]
	if oldest.Height == 0 && len(kept) > 1 {
		oldest = kept[len(kept)-2] // the genesis is everyone's
	}
	found := fmt.Sprintf("block %d", oldest.Height)
	if h, err := s.chain.HashAt(ctx, oldest.Height); err == nil {
		found += " " + h
	} else if errors.Is(err, ErrNotFound) {
		found = fmt.Sprintf("no block %d", oldest.Height)
	} else {
		return err
	}
	return s.stopScanning(ctx, &MismatchError{Chain: s.cfg.Name, Found: found + " (none of the blocks scanned is on the node's chain)",
		Expected: fmt.Sprintf("a chain holding the blocks scanned, %d %s to %d %s", oldest.Height, oldest.Block, cp.Height, cp.Block)})
}
