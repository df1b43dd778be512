package sim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// SenderConfig tunes a simulated payout sender.
type SenderConfig struct {
	Chain domain.Chain
	// NetworkFee per asset code, deducted from each payout (default: one
	// thousand of the asset's smallest units, or 0.01 for 2-decimal assets).
	NetworkFee map[string]domain.Amount
	// HotWallet limits what the simulated hot wallet holds per asset; an
	// asset missing from a non-nil map has nothing. nil: unlimited.
	HotWallet map[string]domain.Amount
	// ValidateAddress checks payout addresses (nil: any non-empty one).
	ValidateAddress func(address string) error
	Now             func() time.Time
}

// Sender pays out on a simulated chain: Build "signs" a transaction, and
// Broadcast records it in sim_payout_txs at the chain's current height;
// each block the simulator mines (Simulator.Mine) deepens it by one. State
// is in the read-model database, so it survives restarts.
//
// sim_payout_txs allows one transaction per payout: a second, different
// broadcast for the same payout is refused as a double spend.
type Sender struct {
	cfg    SenderConfig
	db     sqldb.DB
	mu     sync.Mutex
	fail   int // the next fail broadcasts fail (temporary), for tests and demos
	builds map[string]int
}

var _ chain.Sender = (*Sender)(nil)

// NewSender builds a sender for cfg.Chain. Run Migrate (the simulator's
// tables, sim_payout_txs among them) on db first.
func NewSender(ctx context.Context, db sqldb.DB, cfg SenderConfig) (*Sender, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sender{cfg: cfg, db: db, builds: map[string]int{}}, nil
}

func (s *Sender) Chain() domain.Chain { return s.cfg.Chain }

// FailBroadcasts makes the next n broadcasts fail with a temporary error.
func (s *Sender) FailBroadcasts(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = n
}

// Builds returns how often Build ran for a payout.
func (s *Sender) Builds(payoutID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.builds[payoutID]
}

// simTx is the "raw transaction" of the simulator: readable JSON, hex-encoded.
type simTx struct {
	PayoutID string `json:"payout_id"`
	Asset    string `json:"asset"`
	To       string `json:"to"`
	Amount   string `json:"amount"` // what the recipient gets
	Fee      string `json:"fee"`
	Nonce    string `json:"nonce"`
}

func (s *Sender) networkFee(a domain.Asset) domain.Amount {
	if f, ok := s.cfg.NetworkFee[a.Code]; ok {
		return f
	}
	shift := min(a.Decimals, 3)
	return domain.AmountFromDecimal(domain.MustAmount("1").Decimal().Shift(shift - a.Decimals))
}

// Build implements chain.Sender. Errors: chain.ErrPermanent for a bad
// address, a fee not below the amount, or a hot wallet that cannot pay.
func (s *Sender) Build(ctx context.Context, p chain.PayoutToSend) (chain.Signed, error) {
	return s.build(ctx, p, false)
}

// BuildFeeOnTop implements chain.FeeOnTopSender: the recipient gets
// exactly p.Amount, the hot wallet pays p.Amount + the fee.
func (s *Sender) BuildFeeOnTop(ctx context.Context, p chain.PayoutToSend) (chain.Signed, error) {
	return s.build(ctx, p, true)
}

var _ chain.FeeOnTopSender = (*Sender)(nil)

func (s *Sender) build(ctx context.Context, p chain.PayoutToSend, feeOnTop bool) (chain.Signed, error) {
	s.mu.Lock()
	s.builds[p.PayoutID]++
	s.mu.Unlock()
	if p.ToAddress == "" {
		return chain.Signed{}, fmt.Errorf("%w: no address", chain.ErrPermanent)
	}
	if s.cfg.ValidateAddress != nil {
		if err := s.cfg.ValidateAddress(p.ToAddress); err != nil {
			return chain.Signed{}, fmt.Errorf("%w: invalid address: %v", chain.ErrPermanent, err)
		}
	}
	fee := s.networkFee(p.Asset)
	received, need := p.Amount.Sub(fee), p.Amount
	if feeOnTop {
		received, need = p.Amount, p.Amount.Add(fee)
	} else if fee.Cmp(p.Amount) >= 0 {
		return chain.Signed{}, fmt.Errorf("%w: network fee %s is not below %s", chain.ErrPermanent, fee, p.Amount)
	}
	if s.cfg.HotWallet != nil {
		spent, err := s.spent(ctx, p.Asset.Code)
		if err != nil {
			return chain.Signed{}, err
		}
		if have := s.cfg.HotWallet[p.Asset.Code].Sub(spent); have.LessThan(need) {
			return chain.Signed{}, fmt.Errorf("%w: insufficient hot-wallet funds: %s %s left, %s needed", chain.ErrPermanent, have, p.Asset.Code, need)
		}
	}
	nonce := make([]byte, 8)
	if _, err := rand.Read(nonce); err != nil {
		return chain.Signed{}, err
	}
	raw, err := json.Marshal(simTx{PayoutID: p.PayoutID, Asset: p.Asset.Code, To: p.ToAddress, Amount: received.String(),
		Fee: fee.String(), Nonce: hex.EncodeToString(nonce)})
	if err != nil {
		return chain.Signed{}, err
	}
	txid := hex.EncodeToString(sha256Sum(raw))
	if s.cfg.Chain == domain.ChainEthereum {
		txid = "0x" + txid
	}
	return chain.Signed{TxID: txid, Raw: hex.EncodeToString(raw), NetworkFee: fee}, nil
}

// spent is what the hot wallet has sent of an asset (amounts and fees).
func (s *Sender) spent(ctx context.Context, asset string) (domain.Amount, error) {
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT amount, fee FROM sim_payout_txs WHERE asset = ?`), asset)
	if err != nil {
		return domain.Amount{}, fmt.Errorf("sim sender: %w", err)
	}
	defer rows.Close()
	var total domain.Amount
	for rows.Next() {
		var a, f string
		if err := rows.Scan(&a, &f); err != nil {
			return domain.Amount{}, err
		}
		total = total.Add(domain.MustAmount(a)).Add(domain.MustAmount(f))
	}
	return total, rows.Err()
}

// ErrDoubleSpend: a second, different transaction for a payout that
// already has one on the simulated chain.
var ErrDoubleSpend = fmt.Errorf("%w: double spend: the payout already has a transaction", chain.ErrPermanent)

// Broadcast implements chain.Sender: idempotent for the same transaction.
func (s *Sender) Broadcast(ctx context.Context, tx chain.Signed) error {
	s.mu.Lock()
	if s.fail > 0 {
		s.fail--
		s.mu.Unlock()
		return errors.New("sim: node unreachable (simulated)")
	}
	s.mu.Unlock()
	body, err := hex.DecodeString(tx.Raw)
	if err != nil {
		return fmt.Errorf("%w: raw transaction is not hex", chain.ErrPermanent)
	}
	var st simTx
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("%w: raw transaction: %v", chain.ErrPermanent, err)
	}
	var existing string
	err = s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT txid FROM sim_payout_txs WHERE payout_id = ?`), st.PayoutID).Scan(&existing)
	switch {
	case err == nil && existing == tx.TxID:
		return nil // already broadcast: success
	case err == nil:
		return ErrDoubleSpend
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	var height int64
	err = s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT height FROM sim_chains WHERE chain = ?`), string(s.cfg.Chain)).Scan(&height)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	_, err = s.db.Write.ExecContext(ctx, s.db.Q(`INSERT INTO sim_payout_txs (txid, payout_id, chain, asset, to_address, amount, fee, raw, height, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), tx.TxID, st.PayoutID, string(s.cfg.Chain), st.Asset, st.To, st.Amount, st.Fee, tx.Raw,
		height, s.cfg.Now().UnixMilli())
	return err
}

// Confirmations implements chain.Sender: blocks mined since the broadcast.
func (s *Sender) Confirmations(ctx context.Context, txid string) (int, error) {
	var at int64
	err := s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT height FROM sim_payout_txs WHERE txid = ?`), txid).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("sim: transaction %s is unknown", txid)
	}
	if err != nil {
		return 0, err
	}
	var height int64
	err = s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT height FROM sim_chains WHERE chain = ?`), string(s.cfg.Chain)).Scan(&height)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	return int(max(height-at, 0)), nil
}

// PayoutTx is a payout transaction on the simulated chain.
type PayoutTx struct {
	TxID, PayoutID, Asset, To, Amount, Fee string
}

// PayoutTxs lists the payout transactions broadcast, oldest first.
func (s *Sender) PayoutTxs(ctx context.Context) ([]PayoutTx, error) {
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT txid, payout_id, asset, to_address, amount, fee FROM sim_payout_txs WHERE chain = ? ORDER BY created_at, txid`),
		string(s.cfg.Chain))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PayoutTx
	for rows.Next() {
		var t PayoutTx
		if err := rows.Scan(&t.TxID, &t.PayoutID, &t.Asset, &t.To, &t.Amount, &t.Fee); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
