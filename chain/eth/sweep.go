package eth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/domain"
)

// ErrInsufficientGas: the hot wallet has too little ETH for the gas of a
// sweep (a payout returns chain.ErrPermanent instead).
var ErrInsufficientGas = errors.New("eth: insufficient hot-wallet ETH for gas")

// Sweep states (eth_sweeps.state).
const (
	SweepTopUp    = "topup"
	SweepTransfer = "transfer"
	SweepDone     = "done"
	SweepFailed   = "failed"
	SweepNothing  = "nothing" // nothing worth sweeping (not stored)
)

// SweepResult is where one deposit address's sweep of an asset is.
type SweepResult struct {
	SweepID string
	Asset   string
	Address string
	State   string
	// Amount is what is swept in the asset's base units; for ETH, what
	// reaches the hot wallet (the balance less the transfer's gas).
	Amount *big.Int
	// TopUpWei is the ETH the hot wallet sent the address for gas;
	// GasCostWei what the sweep cost the hot wallet in ETH (top-ups and
	// their fees, or for ETH the transfer's fee), set once done.
	TopUpWei, GasCostWei *big.Int
	TxIDs                []string
}

type sweepRow struct {
	id, asset, address, state, topups, transfer string
	index                                       int64
	round                                       int
	amount, topupWei                            *big.Int
}

// Sweep moves the balance of asset (an ETH or token code) on the deposit
// address at HD index into the hot wallet, as far as it can go without
// waiting for a block, and returns where it is; call it again after blocks
// to finish. A token sweep first tops up the address's gas from the hot
// wallet (topup), then sends the tokens (transfer); an ETH sweep sends the
// balance less the transfer's gas. Each transaction is stored in eth_txs
// before it is sent, and rebroadcast while it waits, so a restart resumes
// the sweep. The gas cost is recorded in eth_sweeps and logged.
// Errors: ErrInsufficientGas (hot wallet), node and database errors.
func (s *Sender) Sweep(ctx context.Context, asset string, index int64) (SweepResult, error) {
	var token *tokenAsset
	if t, ok := s.tokens[asset]; ok {
		token = &t
	} else if s.native == nil || asset != s.native.Code {
		return SweepResult{}, fmt.Errorf("eth sender: cannot sweep %s", asset)
	}
	if index == s.hotIndex {
		return SweepResult{}, errors.New("eth sender: the hot wallet does not sweep itself")
	}
	addr, err := s.address(index)
	if err != nil {
		return SweepResult{}, fmt.Errorf("eth sender: deposit key %d: %w", index, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	row, ok, err := s.openSweep(ctx, asset, addr)
	if err != nil {
		return SweepResult{}, err
	}
	if !ok {
		row, ok, err = s.startSweep(ctx, asset, addr, index, token)
		if err != nil || !ok {
			return SweepResult{SweepID: row.id, Asset: asset, Address: addr.Hex(), State: SweepNothing}, err
		}
	}
	if _, err := chain.Drive(ctx, &sweepSteps{s: s, r: &row, token: token}, maxSweepSteps); err != nil {
		return s.result(row, nil), err
	}
	var cost *big.Int
	if row.state == SweepDone {
		cost, err = s.sweepCost(ctx, row, token == nil)
		if err != nil {
			return s.result(row, nil), err
		}
	}
	return s.result(row, cost), nil
}

func (s *Sender) result(r sweepRow, cost *big.Int) SweepResult {
	res := SweepResult{SweepID: r.id, Asset: r.asset, Address: r.address, State: r.state, Amount: r.amount, TopUpWei: r.topupWei, GasCostWei: cost}
	for _, t := range strings.Split(r.topups, ",") {
		if t != "" {
			res.TxIDs = append(res.TxIDs, t)
		}
	}
	if r.transfer != "" {
		res.TxIDs = append(res.TxIDs, r.transfer)
	}
	return res
}

const sweepColumns = `sweep_id, asset, address, hd_index, round, amount_units, state, topup_txids, transfer_txid, topup_wei`

// openSweep loads the address's sweep in progress (not done or failed).
func (s *Sender) openSweep(ctx context.Context, asset string, addr common.Address) (sweepRow, bool, error) {
	db := s.deps.DB
	var r sweepRow
	var amount, topup string
	err := db.Read.QueryRowContext(ctx, db.Q(`SELECT `+sweepColumns+` FROM eth_sweeps WHERE asset = ? AND address = ? AND state IN (?, ?)
		ORDER BY round DESC LIMIT 1`), asset, addr.Hex(), SweepTopUp, SweepTransfer).
		Scan(&r.id, &r.asset, &r.address, &r.index, &r.round, &amount, &r.state, &r.topups, &r.transfer, &topup)
	if errors.Is(err, sql.ErrNoRows) {
		return sweepRow{}, false, nil
	}
	if err != nil {
		return sweepRow{}, false, fmt.Errorf("eth sender: sweep of %s: %w", addr.Hex(), err)
	}
	r.amount, _ = new(big.Int).SetString(amount, 10)
	r.topupWei, _ = new(big.Int).SetString(topup, 10)
	return r, true, nil
}

// startSweep opens a new round when the address holds something worth
// sweeping. ok is false when it does not.
func (s *Sender) startSweep(ctx context.Context, asset string, addr common.Address, index int64, token *tokenAsset) (sweepRow, bool, error) {
	var bal *big.Int
	var err error
	if token != nil {
		bal, err = s.tokenBalance(ctx, token.contract, addr, nil)
		if err != nil {
			return sweepRow{}, false, err
		}
		if bal.Sign() == 0 {
			return sweepRow{}, false, nil
		}
	} else {
		if bal, err = s.client.BalanceAt(ctx, addr, nil); err != nil {
			return sweepRow{}, false, fmt.Errorf("eth sender: balance of %s: %w", addr.Hex(), err)
		}
		_, feeCap, err := s.fees(ctx)
		if err != nil {
			return sweepRow{}, false, err
		}
		// Worth it only when at least half the balance reaches the hot wallet.
		if bal.Cmp(new(big.Int).Mul(big.NewInt(2*transferGas), feeCap)) <= 0 {
			return sweepRow{}, false, nil
		}
	}
	db := s.deps.DB
	var round sql.NullInt64
	if err := db.Read.QueryRowContext(ctx, db.Q(`SELECT MAX(round) FROM eth_sweeps WHERE asset = ? AND address = ?`), asset, addr.Hex()).Scan(&round); err != nil {
		return sweepRow{}, false, fmt.Errorf("eth sender: sweeps: %w", err)
	}
	r := sweepRow{asset: asset, address: addr.Hex(), index: index, round: int(round.Int64) + 1, amount: bal, topupWei: new(big.Int), state: SweepTopUp}
	r.id = fmt.Sprintf("%s:%s:%d", asset, addr.Hex(), r.round)
	now := s.cfg.Now().UnixMilli()
	if _, err := db.Write.ExecContext(ctx, db.Q(`INSERT INTO eth_sweeps (`+sweepColumns+`, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, '', '', '0', ?, ?)`),
		r.id, asset, r.address, index, r.round, bal.String(), r.state, now, now); err != nil {
		return sweepRow{}, false, fmt.Errorf("eth sender: start sweep: %w", err)
	}
	return r, true, nil
}

func (s *Sender) saveSweep(ctx context.Context, r sweepRow, extra string, args ...any) error {
	db := s.deps.DB
	q := `UPDATE eth_sweeps SET state = ?, topup_txids = ?, transfer_txid = ?, topup_wei = ?, amount_units = ?, updated_at = ?` + extra + ` WHERE sweep_id = ?`
	all := append([]any{r.state, r.topups, r.transfer, r.topupWei.String(), r.amount.String(), s.cfg.Now().UnixMilli()}, args...)
	if _, err := db.Write.ExecContext(ctx, db.Q(q), append(all, r.id)...); err != nil {
		return fmt.Errorf("eth sender: sweep %s: %w", r.id, err)
	}
	return nil
}

// maxSweepSteps bounds the transitions of one Sweep call.
const maxSweepSteps = 4

// sweepSteps are a sweep round's steps on the step machine. Its stage is
// the row's state: topup is StageBuild (top-ups, then the transfer are
// built there), transfer is StageSent (following it rebroadcasts it
// while it waits: waitTx), done and failed StageDone.
type sweepSteps struct {
	s     *Sender
	r     *sweepRow
	token *tokenAsset
}

var _ chain.Steps = (*sweepSteps)(nil)

func (w *sweepSteps) Stage(context.Context) (chain.Stage, error) {
	switch w.r.state {
	case SweepTopUp:
		return chain.StageBuild, nil
	case SweepTransfer:
		return chain.StageSent, nil
	}
	return chain.StageDone, nil
}

// Build waits for the last top-up, then tops the address up (Wait) or
// signs and stores its transfer (→ transfer).
func (w *sweepSteps) Build(ctx context.Context) (chain.Next, error) {
	s, r, token := w.s, w.r, w.token
	addr := common.HexToAddress(r.address)
	if last := lastOf(r.topups); last != "" {
		mined, err := s.waitTx(ctx, last)
		if err != nil || !mined {
			return chain.Wait, err
		}
	}
	tip, feeCap, err := s.fees(ctx)
	if err != nil {
		return chain.Wait, err
	}
	txdata := types.DynamicFeeTx{GasTipCap: tip, GasFeeCap: feeCap, To: &s.hot}
	var value *big.Int
	if token != nil {
		data := transferData(s.hot, r.amount)
		gas, err := s.client.EstimateGas(ctx, ethereum.CallMsg{From: addr, To: &token.contract, Data: data})
		if err != nil {
			return chain.Wait, fmt.Errorf("eth sender: estimate sweep gas: %w", err)
		}
		gas += gas * tokenGasMarginPct / 100
		need := new(big.Int).Mul(new(big.Int).SetUint64(gas), feeCap)
		have, _, err := s.spendable(ctx, addr, nil)
		if err != nil {
			return chain.Wait, err
		}
		if have.Cmp(need) < 0 {
			return chain.Wait, s.topUp(ctx, r, new(big.Int).Sub(need, have), tip, feeCap)
		}
		value = r.amount
		txdata.To, txdata.Gas, txdata.Value, txdata.Data = &token.contract, gas, new(big.Int), data
	} else {
		bal, _, err := s.spendable(ctx, addr, nil)
		if err != nil {
			return chain.Wait, err
		}
		fee := new(big.Int).Mul(big.NewInt(transferGas), feeCap)
		value = new(big.Int).Sub(bal, fee)
		if value.Sign() <= 0 {
			r.state = SweepFailed
			return chain.Wait, s.saveSweep(ctx, *r, "")
		}
		r.amount = value
		txdata.Gas, txdata.Value = transferGas, value
	}
	t, err := s.signAndStore(ctx, custody.Request{Purpose: custody.PurposeSweep, PayoutID: r.id, Asset: r.asset, FromIndex: r.index}, txdata, value)
	if err != nil {
		return chain.Wait, err
	}
	r.state, r.transfer = SweepTransfer, t.txid
	if err := s.saveSweep(ctx, *r, ""); err != nil {
		return chain.Wait, err
	}
	return chain.Continue, nil
}

// Broadcast is not reached: a signed transfer is StageSent, and Follow sends it.
func (w *sweepSteps) Broadcast(context.Context) (chain.Next, error) {
	return chain.Wait, fmt.Errorf("eth sender: sweep %s: no signed stage", w.r.id)
}

func (w *sweepSteps) Follow(ctx context.Context) (chain.Outcome, error) {
	s, r := w.s, w.r
	mined, err := s.waitTx(ctx, r.transfer)
	if err != nil || !mined {
		return chain.Pending, err
	}
	rc, err := s.client.TransactionReceipt(ctx, common.HexToHash(r.transfer))
	if err != nil {
		return chain.Pending, fmt.Errorf("eth sender: receipt %s: %w", r.transfer, err)
	}
	if rc.Status != types.ReceiptStatusSuccessful {
		return chain.Failed, nil
	}
	return chain.Mined, nil
}

func (w *sweepSteps) Fail(ctx context.Context) error {
	w.r.state = SweepFailed
	w.s.log.Error("eth: sweep transfer reverted", "sweep_id", w.r.id, "txid", w.r.transfer)
	return w.s.saveSweep(ctx, *w.r, "")
}

func (w *sweepSteps) Confirm(ctx context.Context) error {
	s, r := w.s, w.r
	r.state = SweepDone
	cost, err := s.sweepCost(ctx, *r, w.token == nil)
	if err != nil {
		return err
	}
	if err := s.saveSweep(ctx, *r, `, gas_cost_wei = ?`, cost.String()); err != nil {
		return err
	}
	s.log.Info("eth: sweep done", "sweep_id", r.id, "asset", r.asset, "amount_units", r.amount.String(), "topup_wei", r.topupWei.String(),
		"gas_cost_wei", cost.String(), "txid", r.transfer)
	return nil
}

// Rebuild is not reached: a stored transaction keeps its nonce until mined.
func (w *sweepSteps) Rebuild(context.Context) error {
	return fmt.Errorf("eth sender: sweep %s: a transfer is never dropped", w.r.id)
}

// topUp sends the deposit address the ETH its transfer's gas needs.
func (s *Sender) topUp(ctx context.Context, r *sweepRow, amount, tip, feeCap *big.Int) error {
	have, _, err := s.spendable(ctx, s.hot, nil)
	if err != nil {
		return err
	}
	to := common.HexToAddress(r.address)
	need := new(big.Int).Add(amount, new(big.Int).Mul(big.NewInt(transferGas), feeCap))
	if have.Cmp(need) < 0 {
		return fmt.Errorf("%w: %s holds %s wei spendable; topping up %s for its %s sweep needs %s wei",
			ErrInsufficientGas, s.hot.Hex(), have, r.address, r.asset, need)
	}
	t, err := s.signAndStore(ctx, custody.Request{Purpose: custody.PurposeTopUp, PayoutID: r.id, Asset: s.nativeCode(), FromIndex: s.hotIndex,
		ToIndex: r.index}, types.DynamicFeeTx{GasTipCap: tip, GasFeeCap: feeCap, Gas: transferGas, To: &to, Value: amount}, amount)
	if err != nil {
		return err
	}
	if r.topups != "" {
		r.topups += ","
	}
	r.topups += t.txid
	r.topupWei = new(big.Int).Add(r.topupWei, amount)
	if err := s.saveSweep(ctx, *r, ""); err != nil {
		return err
	}
	s.log.Info("eth: sweep gas top-up", "sweep_id", r.id, "topup_wei", amount.String(), "txid", t.txid)
	_, err = s.waitTx(ctx, t.txid)
	return err
}

func (s *Sender) nativeCode() string {
	if s.native != nil {
		return s.native.Code
	}
	return "ETH"
}

func lastOf(list string) string {
	if i := strings.LastIndexByte(list, ','); i >= 0 {
		return list[i+1:]
	}
	return list
}

// waitTx (re)broadcasts a stored transaction and reports whether it is mined.
func (s *Sender) waitTx(ctx context.Context, txid string) (mined bool, err error) {
	r, err := s.client.TransactionReceipt(ctx, common.HexToHash(txid))
	if err == nil && r != nil {
		s.recordFeePaid(ctx, r)
		return true, nil
	}
	if err != nil && !errors.Is(err, ethereum.NotFound) {
		return false, fmt.Errorf("eth sender: receipt %s: %w", txid, err)
	}
	var raw string
	if err := s.deps.DB.Read.QueryRowContext(ctx, s.deps.DB.Q(`SELECT raw FROM eth_txs WHERE txid = ?`), txid).Scan(&raw); err != nil {
		return false, fmt.Errorf("eth sender: stored transaction %s: %w", txid, err)
	}
	tx, err := decodeTx(raw)
	if err != nil {
		return false, err
	}
	return false, s.send(ctx, tx)
}

// sweepCost is what a finished sweep cost the hot wallet in ETH.
func (s *Sender) sweepCost(ctx context.Context, r sweepRow, native bool) (*big.Int, error) {
	db := s.deps.DB
	q := `SELECT fee_paid_wei FROM eth_txs WHERE ref = ? AND purpose = 'topup'`
	cost := new(big.Int).Set(r.topupWei)
	if native {
		q = `SELECT fee_paid_wei FROM eth_txs WHERE ref = ? AND purpose = 'sweep'`
		cost = new(big.Int)
	}
	rows, err := db.Read.QueryContext(ctx, db.Q(q), r.id)
	if err != nil {
		return nil, fmt.Errorf("eth sender: sweep cost: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var paid string
		if err := rows.Scan(&paid); err != nil {
			return nil, err
		}
		v, ok := new(big.Int).SetString(paid, 10)
		if !ok {
			return nil, fmt.Errorf("eth sender: sweep %s: a transaction's fee is not known yet", r.id)
		}
		cost.Add(cost, v)
	}
	return cost, rows.Err()
}

// SweepDeposits advances the sweep of every address with a final deposit
// (eth_deposits: credited, its block final; one a reorg can still undo is
// left where it is, and unmatched ones an operator decided to sweep) and returns what each did. It is meant to run
// periodically (cmd/picd); an address whose sweep fails is logged and the
// others go on; the first error is returned.
func (s *Sender) SweepDeposits(ctx context.Context) ([]SweepResult, error) {
	if s.deps.Invoices == nil {
		return nil, errors.New("eth sender: SweepDeposits needs Invoices")
	}
	db := s.deps.DB
	// The key is that of an invoice on the address: a deposit an operator
	// credited to another invoice (picd chain unmatched credit) is on
	// the address it was paid to, not on that invoice's.
	targets, err := chain.SweepTargets(ctx, db, `SELECT d.asset, d.address, (SELECT MIN(i.invoice_id) FROM invoices i WHERE i.pay_address = d.address)
		FROM eth_deposits d WHERE d.confirmed = 1 AND d.state = ? AND d.invoice_id <> ''
		GROUP BY d.asset, d.address ORDER BY d.asset, d.address LIMIT ?`, scanFinal, maxSweepRows)
	if err != nil {
		return nil, fmt.Errorf("eth sender: deposits to sweep: %w", err)
	}
	// Costs the log refused before are appended again first.
	costsErr := s.BookCosts(ctx)
	if costsErr != nil {
		s.log.Error("eth: booking network costs failed", "err", costsErr)
	}
	if err := s.markUnmatchedSwept(ctx); err != nil {
		return nil, err
	}
	unmatched, err := s.unmatchedTargets(ctx)
	if err != nil {
		return nil, err
	}
	targets = chain.WithTargets(targets, unmatched)
	var out []SweepResult
	first := costsErr
	for _, t := range targets {
		index, err := s.indexes.Of(ctx, t.Invoice)
		if err == nil && index < 0 {
			continue // a reused address we do not hold the key of
		}
		if err == nil {
			if a, derr := s.deps.Keys.Address(domain.ChainEthereum, index); derr != nil || !strings.EqualFold(a, t.Address) {
				err = fmt.Errorf("eth sender: %s is not our address at index %d", t.Address, index)
			}
		}
		var res SweepResult
		if err == nil {
			res, err = s.Sweep(ctx, t.Asset, index)
		}
		if err != nil {
			s.log.Error("eth: sweep failed", "asset", t.Asset, "address", t.Address, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		if res.State != SweepNothing {
			out = append(out, res)
		}
	}
	if err := s.markUnmatchedSwept(ctx); err != nil && first == nil {
		first = err
	}
	retired, err := s.sweepRetired(ctx)
	out = append(out, retired...)
	if err != nil && first == nil {
		first = err
	}
	return out, first
}

// sweepRetired advances the move of every retired hot wallet's funds
// into the hot wallet: each token first, with the retired wallet's own
// ETH for gas, then, once no token of it is left to move, its ETH (less
// the transfer's gas). A retired wallet left holding too little ETH for a
// token's gas is topped up like a deposit address. A wallet found empty
// of everything is not looked at again until the process restarts.
func (s *Sender) sweepRetired(ctx context.Context) ([]SweepResult, error) {
	var out []SweepResult
	var first error
	codes := make([]string, 0, len(s.tokens))
	for code := range s.tokens {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	for _, key := range s.cfg.RetiredHotWallets {
		if _, moved := s.retiredMoved.Load(key); moved {
			continue
		}
		tokensLeft, found := false, false
		for _, code := range codes {
			res, err := s.Sweep(ctx, code, key)
			if err != nil {
				s.log.Error("eth: moving a retired hot wallet's funds failed", "asset", code, "key", key, "err", err)
				if first == nil {
					first = err
				}
				tokensLeft = true
				continue
			}
			if res.State != SweepNothing {
				out = append(out, res)
				found = true
			}
			if res.State == SweepTopUp || res.State == SweepTransfer {
				tokensLeft = true
			}
		}
		if tokensLeft {
			continue
		}
		if s.native != nil {
			res, err := s.Sweep(ctx, s.native.Code, key)
			if err != nil {
				s.log.Error("eth: moving a retired hot wallet's funds failed", "asset", s.native.Code, "key", key, "err", err)
				if first == nil {
					first = err
				}
				continue
			}
			if res.State != SweepNothing {
				out = append(out, res)
				found = true
			}
		}
		if !found {
			s.retiredMoved.Store(key, true)
		}
	}
	return out, first
}
