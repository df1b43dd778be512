package sim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// MaxBlocks bounds one Mine or Reorg call.
const MaxBlocks = 10_000

// ErrNotSimulated: the invoice's chain is watched by a real node, not the
// simulator (wraps domain.ErrValidation).
var ErrNotSimulated = fmt.Errorf("%w: that chain is not simulated", domain.ErrValidation)

// Config tunes the simulator. The zero value simulates every chain with
// the assets' own thresholds.
type Config struct {
	// Confirmations overrides an asset's threshold by asset code. A transfer
	// is never confirmed below its invoice's required_confirmations (the
	// domain refuses that): to confirm after one block, give the commands
	// assets with one confirmation too (WithConfirmations).
	Confirmations map[string]int
	// Chains limits the simulator to these chains (empty: all), so that an
	// operator with a real node for one chain cannot fake payments on it.
	Chains []domain.Chain
	// Now is the clock for bookkeeping times (default time.Now).
	Now func() time.Time
}

// Simulator is an in-process chain for every asset: payments are reported
// at once with no confirmation, and each Mine adds blocks to every chain.
// Its state lives in the read-model database (sim_chains, sim_transfers),
// so it survives restarts.
type Simulator struct {
	cfg    Config
	sink   chain.Sink
	db     sqldb.DB
	assets domain.Assets
	log    *slog.Logger
	chains map[domain.Chain]bool
	mu     sync.Mutex // one operation at a time

	// The engine's scanner of each chain and the ledger they report to,
	// made by the first scan (see scanAll).
	scanners map[domain.Chain]*scan.Scanner[simBlock]
	rec      *recorder
}

// New builds a simulator. Run Migrate on db first. Errors: a threshold
// override below 1 or for an unknown asset.
func New(cfg Config, sink chain.Sink, db sqldb.DB, assets domain.Assets, log *slog.Logger) (*Simulator, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	for code, n := range cfg.Confirmations {
		if _, err := assets.Lookup(code); err != nil {
			return nil, fmt.Errorf("sim: confirmations: %w", err)
		}
		if n < 1 {
			return nil, fmt.Errorf("sim: %s: confirmations must be at least 1", code)
		}
	}
	chains := map[domain.Chain]bool{}
	for _, a := range assets.List() {
		chains[a.Chain] = len(cfg.Chains) == 0
	}
	for _, c := range cfg.Chains {
		if _, ok := chains[c]; !ok {
			return nil, fmt.Errorf("sim: no asset on chain %q", c)
		}
		chains[c] = true
	}
	return &Simulator{cfg: cfg, sink: sink, db: db, assets: assets, log: log.With("chain", "sim"), chains: chains}, nil
}

// WithConfirmations returns assets with every threshold set to n: what the
// quick start gives the commands so that one simulated block confirms.
// Errors: n below 1.
func WithConfirmations(assets domain.Assets, n int) (domain.Assets, error) {
	list := assets.List()
	for i := range list {
		// The simulator's finality is one block past confirmations (money rule 4).
		list[i].Confirmations, list[i].Finality = n, n+1
	}
	raw, err := json.Marshal(list)
	if err != nil {
		return domain.Assets{}, err
	}
	return domain.ParseAssets(raw)
}

// WithSimulatedFinality returns assets whose chains in simulated have the
// simulator's finality, one block past their confirmations (money rule
// 4), so that GET /v1/assets says what the simulator does when real nodes
// watch the other chains.
func WithSimulatedFinality(assets domain.Assets, simulated []domain.Chain) (domain.Assets, error) {
	list := assets.List()
	for i, a := range list {
		if slices.Contains(simulated, a.Chain) {
			list[i].Finality = a.Confirmations + 1
		}
	}
	raw, err := json.Marshal(list)
	if err != nil {
		return domain.Assets{}, err
	}
	return domain.ParseAssets(raw)
}

// Payment is a simulated transfer as Pay reported it.
type Payment struct {
	TxID          string `json:"txid"`
	DepositID     string `json:"deposit_id"`
	InvoiceID     string `json:"invoice_id"`
	Asset         string `json:"asset"`
	Address       string `json:"address"`
	Amount        string `json:"amount"`
	Confirmations int    `json:"confirmations"`
	// RequiredConfirmations is the depth at which Mine confirms it.
	RequiredConfirmations int `json:"required_confirmations"`
}

// Pay sends amount (a decimal string in the asset's precision) to the pay
// address of an invoice, given by its id ("inv_…") or by the address, in
// the invoice's asset. The transfer is reported at once with 0
// confirmations; it returns the transaction id.
// Errors: domain.ErrNotFound, domain.ErrInvalidAmount, ErrNotSimulated.
func (s *Simulator) Pay(ctx context.Context, target, amount string) (string, error) {
	p, err := s.PayDetailed(ctx, target, amount)
	return p.TxID, err
}

// PayDetailed is Pay returning all it did.
func (s *Simulator) PayDetailed(ctx context.Context, target, amount string) (Payment, error) {
	return s.PayOnce(ctx, target, amount, "")
}

// PayOnce is PayDetailed made safe to retry: the same paymentID (the
// client's; empty: a random payment) is the same transaction, so a retry
// after an answer lost in transit (the ledger recorded the deposit, the
// client saw a 500) records the deposit and the transfer once, and the
// transfer is mined as usual. A paymentID reused for another invoice or
// amount is refused (domain.ErrValidation).
func (s *Simulator) PayOnce(ctx context.Context, target, amount, paymentID string) (Payment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if target == "" {
		return Payment{}, fmt.Errorf("%w: invoice id or address required", domain.ErrValidation)
	}
	q := `SELECT invoice_id, asset, pay_address FROM invoices WHERE invoice_id = ?`
	if !strings.HasPrefix(target, "inv_") {
		q = `SELECT invoice_id, asset, pay_address FROM invoices WHERE pay_address = ? ORDER BY invoice_id DESC LIMIT 1`
	}
	var invoiceID, code, address string
	err := s.db.Read.QueryRowContext(ctx, s.db.Q(q), target).Scan(&invoiceID, &code, &address)
	if errors.Is(err, sql.ErrNoRows) {
		return Payment{}, fmt.Errorf("invoice %s: %w", target, domain.ErrNotFound)
	}
	if err != nil {
		return Payment{}, fmt.Errorf("sim pay: %w", err)
	}
	asset, err := s.assets.Lookup(code)
	if err != nil {
		return Payment{}, err
	}
	if !s.chains[asset.Chain] {
		return Payment{}, fmt.Errorf("%w: %s", ErrNotSimulated, asset.Chain)
	}
	value, err := domain.ParseAmount(amount, asset.Decimals)
	if err != nil {
		return Payment{}, err
	}
	if !value.IsPositive() {
		return Payment{}, fmt.Errorf("%w: amount must be greater than 0", domain.ErrInvalidAmount)
	}
	txid, depositID, err := newTxID(asset, invoiceID, paymentID)
	if err != nil {
		return Payment{}, err
	}
	var was Payment
	err = s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT invoice_id, amount FROM sim_transfers WHERE txid = ?`), txid).Scan(&was.InvoiceID, &was.Amount)
	switch {
	case err == nil && (was.InvoiceID != invoiceID || was.Amount != value.String()):
		return Payment{}, fmt.Errorf("%w: payment_id %q was used for another payment", domain.ErrValidation, paymentID)
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return Payment{}, fmt.Errorf("sim pay: %w", err)
	}
	matched, err := s.sink.Observe(ctx, chain.Transfer{Asset: asset.Code, Address: address, TxID: txid, DepositID: depositID, Amount: value})
	if err != nil {
		return Payment{}, fmt.Errorf("sim pay: %w", err)
	}
	var required int
	err = s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT required_confirmations FROM invoices WHERE invoice_id = ?`), matched).Scan(&required)
	if err != nil {
		return Payment{}, fmt.Errorf("sim pay: %w", err)
	}
	p := Payment{TxID: txid, DepositID: depositID, InvoiceID: matched, Asset: asset.Code, Address: address, Amount: value.String(),
		RequiredConfirmations: max(s.threshold(asset), required)}
	// Recorded after the ledger saw it: a crash in between leaves a payment
	// that never confirms, which for a simulator is a fair trade for never
	// recording one the ledger refused.
	// A retry of a recorded payment (same paymentID) records nothing more.
	_, err = s.db.Write.ExecContext(ctx, s.db.Q(`INSERT INTO sim_transfers (txid, deposit_id, chain, asset, address, invoice_id, amount,
		confirmations, required_confirmations, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, 'pending', ?)
		ON CONFLICT (txid) DO NOTHING`),
		p.TxID, p.DepositID, string(asset.Chain), p.Asset, p.Address, p.InvoiceID, p.Amount, p.RequiredConfirmations, s.cfg.Now().UnixMilli())
	if err != nil {
		return Payment{}, fmt.Errorf("sim pay: %w", err)
	}
	s.log.Info("sim: payment sent", "txid", p.TxID, "invoice_id", p.InvoiceID, "asset", p.Asset, "amount", p.Amount)
	return p, nil
}

func (s *Simulator) threshold(a domain.Asset) int {
	if n, ok := s.cfg.Confirmations[a.Code]; ok {
		return n
	}
	return a.Confirmations
}

// newTxID returns a transaction id shaped like the chain's, and the
// deposit id of its one transfer: derived from the invoice and the
// client's payment id when there is one, random otherwise.
func newTxID(a domain.Asset, invoiceID, paymentID string) (txid, depositID string, err error) {
	b := make([]byte, 32)
	if paymentID != "" {
		sum := sha256.Sum256([]byte("sim-pay\x00" + invoiceID + "\x00" + paymentID))
		b = sum[:]
	} else if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	txid = hex.EncodeToString(b)
	if a.Chain == domain.ChainEthereum {
		txid = "0x" + txid
	}
	switch {
	case a.Chain == domain.ChainBitcoin, !a.Native():
		return txid, txid + ":0", nil
	}
	return txid, txid, nil
}

// Confirmed is a deposit Mine confirmed.
type Confirmed struct {
	InvoiceID     string `json:"invoice_id"`
	DepositID     string `json:"deposit_id"`
	TxID          string `json:"txid"`
	Confirmations int    `json:"confirmations"`
}

// MineResult is what Mine did.
type MineResult struct {
	Blocks    int                    `json:"blocks"`
	Heights   map[domain.Chain]int64 `json:"heights"`
	Confirmed []Confirmed            `json:"confirmed"`
	// Final lists the deposits that became final (spendable) in these blocks.
	Final  []Confirmed       `json:"final"`
	Failed map[string]string `json:"failed,omitempty"` // deposit id → error, retried by the next Mine
}

// Mine adds blocks (0..MaxBlocks) to every simulated chain, the first of
// them with the transfers waiting in the mempool, and runs the scan engine
// over each chain: transfers at their threshold are confirmed, one block
// deeper final. Mine(ctx, 0) retries what failed before.
// Errors: domain.ErrValidation for blocks out of range; database errors.
func (s *Simulator) Mine(ctx context.Context, blocks int) (MineResult, error) {
	if blocks < 0 || blocks > MaxBlocks {
		return MineResult{}, fmt.Errorf("%w: blocks must be between 0 and %d", domain.ErrValidation, MaxBlocks)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := s.exclusive(ctx)
	if err != nil {
		return MineResult{}, err
	}
	defer unlock()
	res := MineResult{Blocks: blocks, Heights: map[domain.Chain]int64{}, Confirmed: []Confirmed{}, Final: []Confirmed{}}
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("sim mine: %w", err)
	}
	defer tx.Rollback()
	for _, c := range s.chainList() {
		var h int64
		err := tx.QueryRowContext(ctx, s.db.Q(`SELECT height FROM sim_chains WHERE chain = ?`), string(c)).Scan(&h)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, s.db.Q(`INSERT INTO sim_chains (chain, height) VALUES (?, ?)`), string(c), blocks)
		case err == nil:
			_, err = tx.ExecContext(ctx, s.db.Q(`UPDATE sim_chains SET height = ? WHERE chain = ?`), h+int64(blocks), string(c))
		}
		if err == nil && blocks > 0 {
			_, err = tx.ExecContext(ctx, s.db.Q(`UPDATE sim_transfers SET height = ? WHERE chain = ? AND height IS NULL AND state <> 'dropped'`),
				h+1, string(c))
		}
		if err != nil {
			return res, fmt.Errorf("sim mine: %w", err)
		}
		res.Heights[c] = h + int64(blocks)
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("sim mine: %w", err)
	}
	rec, failed, err := s.scanAll(ctx)
	if err != nil {
		return res, err
	}
	res.Confirmed = append(res.Confirmed, rec.confirmed...)
	res.Final = append(res.Final, rec.final...)
	res.Failed = failed
	s.log.Info("sim: mined", "blocks", blocks, "confirmed", len(res.Confirmed), "final", len(res.Final))
	return res, nil
}

// exclusive makes Mine and Reorg one at a time across every process that
// serves the simulator on one Postgres (the mutex does it within one):
// two mines at once locked the chains' rows in different orders
// (deadlock) and both confirmed, and listed, the same deposits. It holds a
// transaction-scoped advisory lock until unlock; SQLite is one process.
func (s *Simulator) exclusive(ctx context.Context) (unlock func(), err error) {
	if s.db.Dialect != sqldb.Postgres {
		return func() {}, nil
	}
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sim lock: %w", err)
	}
	// The lock's session idles while the mine runs its commands on others;
	// a mine stuck behind another waits at most lock_timeout.
	for _, q := range []string{`SET LOCAL idle_in_transaction_session_timeout = 0`, `SET LOCAL lock_timeout = '30s'`,
		`SELECT pg_advisory_xact_lock(hashtext('acceptcryptohere/sim'))`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("sim lock: %w", err)
		}
	}
	return func() { _ = tx.Rollback() }, nil
}

// chainList is the simulated chains in one order.
func (s *Simulator) chainList() []domain.Chain {
	var out []domain.Chain
	for c, on := range s.chains {
		if on {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ReorgResult is what Reorg did.
type ReorgResult struct {
	Depth    int         `json:"depth"`
	Reverted []Confirmed `json:"reverted"`
}

// Reorg replaces the last depth blocks of every chain with others and runs
// the scan engine, which finds the fork and reverts the transfers mined in
// them (confirmed or not, final or not); transfers still waiting for their
// first block are untouched. With reinclude, as on a real chain, the
// reverted transactions are back in the mempool (seen again with 0
// confirmations) and the next blocks mine them again; without it they are
// gone, as after a double spend.
// Errors: domain.ErrValidation for depth out of range; database errors.
func (s *Simulator) Reorg(ctx context.Context, depth int, reinclude bool) (ReorgResult, error) {
	if depth < 1 || depth > MaxBlocks {
		return ReorgResult{}, fmt.Errorf("%w: depth must be between 1 and %d", domain.ErrValidation, MaxBlocks)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := s.exclusive(ctx)
	if err != nil {
		return ReorgResult{}, err
	}
	defer unlock()
	res := ReorgResult{Depth: depth, Reverted: []Confirmed{}}
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		return res, err
	}
	gone := "'dropped'"
	if reinclude {
		gone = "'mempool'"
	}
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("sim reorg: %w", err)
	}
	defer tx.Rollback()
	for _, c := range s.chainList() {
		var h int64
		err := tx.QueryRowContext(ctx, s.db.Q(`SELECT height FROM sim_chains WHERE chain = ?`), string(c)).Scan(&h)
		if errors.Is(err, sql.ErrNoRows) {
			continue // nothing mined on it yet
		}
		if err != nil {
			return res, fmt.Errorf("sim reorg: %w", err)
		}
		from := max(h-int64(depth)+1, 1)
		for height := from; height <= h; height++ {
			if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO sim_blocks (chain, height, hash) VALUES (?, ?, ?)
				ON CONFLICT (chain, height) DO UPDATE SET hash = excluded.hash`), string(c), height, blockID(c, height, hex.EncodeToString(salt))); err != nil {
				return res, fmt.Errorf("sim reorg: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`UPDATE sim_transfers SET height = NULL, state = `+gone+`
			WHERE chain = ? AND height >= ? AND state <> 'dropped'`), string(c), from); err != nil {
			return res, fmt.Errorf("sim reorg: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("sim reorg: %w", err)
	}
	rec, failed, err := s.scanAll(ctx)
	if err != nil {
		return res, err
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("sim reorg: the scan failed (%v); the next mine finishes it", failed)
	}
	res.Reverted = append(res.Reverted, rec.reverted...)
	return res, nil
}

//go:embed migrations
var migrations embed.FS

// Migrate creates or upgrades the simulator's tables in the read-model
// database (numbered migrations per dialect, tracked in sim_migrations).
func Migrate(ctx context.Context, db sqldb.DB) error {
	return sqldb.ApplyMigrations(ctx, db, migrations, "migrations", "sim_migrations")
}
