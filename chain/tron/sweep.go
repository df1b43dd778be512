package tron

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// StreamReader reads the event log (eventstore.Store): a sweep learns the
// HD index of a deposit address from its invoice's InvoiceCreated.
type StreamReader interface {
	ReadStream(ctx context.Context, stream string, from int64, max int) ([]eventstore.RecordedEvent, error)
}

var _ StreamReader = (eventstore.Store)(nil)

// Sweep states (tron_sweeps.state).
const (
	SweepTopUp    = "topup"
	SweepTransfer = "transfer"
	SweepDone     = "done"
	SweepFailed   = "failed"
	// SweepEmpty: the address held nothing worth sweeping (a row is kept
	// so the deposits before it are not looked at again).
	SweepEmpty = "empty"
	// SweepNothing: no round was started (another asset's sweep of the
	// address is in progress); not stored.
	SweepNothing = "nothing"
)

// Bounds of the sweeps.
const (
	maxSweepRows = 500
	// maxFailedSweeps: after that many failed rounds an address is left
	// alone (an error is logged every pass) until an operator looks.
	maxFailedSweeps = 3
	// maxSweepSteps bounds the transitions of one Sweep call.
	maxSweepSteps = 4
)

// ErrSweepTopUpFunds: the hot wallet has too little TRX to give a deposit
// address the energy and bandwidth of its sweep. Fund it; the sweep resumes.
var ErrSweepTopUpFunds = errors.New("tron: insufficient hot-wallet TRX to top up a sweep")

// SweepResult is where one deposit address's sweep of an asset is.
type SweepResult struct {
	SweepID string
	Asset   string
	Address string
	State   string
	// Amount is what is swept in the asset's base units; for TRX, what
	// reaches the hot wallet (the balance less the transfer's bandwidth).
	Amount *big.Int
	// TopUpSun is the TRX the hot wallet sent the address; BurnedSun the
	// TRX the network burned for the sweep so far (top-ups' fees, including
	// an account activation, and the transfer's energy and bandwidth).
	TopUpSun, BurnedSun int64
	// Energy is the transfer's estimated energy (tokens).
	Energy int64
	TxIDs  []string
}

type sweepRow struct {
	id, asset, address, state      string
	index, round                   int64
	amount                         *big.Int
	topups, transfer               string
	pendingTxID, pendingRaw        string
	topupSun, burnedSun, energyEst int64
	addrBytes                      []byte
}

const sweepColumns = `sweep_id, asset, address, hd_index, round, amount_units, state, topup_txids, transfer_txid, pending_txid, pending_raw,
	topup_sun, burned_sun, energy`

// Sweep moves the balance of asset (TRX or a TRC-20 code) on the deposit
// address at HD index into the hot wallet, as far as it can go without
// waiting for a block, and returns where it is; call it again after
// blocks to finish.
//
// A token sweep is a state machine, stored in tron_sweeps:
//   - topup: the address needs TRX to burn for its transfer's energy and
//     bandwidth (a deposit address holds tokens only; receiving tokens does
//     not even activate it). The energy comes from a dry run of the
//     transfer; what the address lacks is sent from the hot wallet, and the
//     step waits for that transfer's block.
//   - transfer: the address's transfer(hot wallet, balance), signed with
//     its own key, is out; the step waits for its block.
//   - done (or failed, when the transfer failed on chain).
//
// A TRX sweep goes straight to transfer: the balance less its bandwidth.
// Every transaction is signed, stored, then broadcast; while it is in no
// block it is rebroadcast (the same bytes), and one that can never
// confirm (expired, reference block gone) is dropped and the step built
// again. So a restart resumes a sweep where it was. The TRX it costs is
// recorded in tron_sweeps (topup_sun, burned_sun) and logged.
// Errors: ErrSweepTopUpFunds, node and database errors.
func (s *Sender) Sweep(ctx context.Context, asset string, index int64) (SweepResult, error) {
	if _, ok := s.tokens[asset]; !ok && (s.native == "" || asset != s.native) {
		return SweepResult{}, fmt.Errorf("tron sweep: cannot sweep %s", asset)
	}
	if index == s.cfg.HotWalletIndex {
		return SweepResult{}, errors.New("tron sweep: the hot wallet does not sweep itself")
	}
	addr, err := s.addressAt(index)
	if err != nil {
		return SweepResult{}, fmt.Errorf("tron sweep: deposit key %d: %w", index, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	row, ok, err := s.openSweep(ctx, asset, addr)
	if err != nil {
		return SweepResult{}, err
	}
	if !ok {
		if row, ok, err = s.startSweep(ctx, asset, addr, index); err != nil || !ok {
			if row.state == "" {
				row.state = SweepNothing
			}
			return SweepResult{SweepID: row.id, Asset: asset, Address: addr, State: row.state}, err
		}
	}
	if _, err := chain.Drive(ctx, &sweepSteps{s: s, r: &row}, maxSweepSteps); err != nil {
		return row.result(), err
	}
	return row.result(), nil
}

func (r sweepRow) result() SweepResult {
	res := SweepResult{SweepID: r.id, Asset: r.asset, Address: r.address, State: r.state, Amount: r.amount, TopUpSun: r.topupSun,
		BurnedSun: r.burnedSun, Energy: r.energyEst}
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

func (s *Sender) scanSweep(row *sql.Row) (sweepRow, error) {
	var r sweepRow
	var amount string
	err := row.Scan(&r.id, &r.asset, &r.address, &r.index, &r.round, &amount, &r.state, &r.topups, &r.transfer, &r.pendingTxID, &r.pendingRaw,
		&r.topupSun, &r.burnedSun, &r.energyEst)
	if err != nil {
		return sweepRow{}, err
	}
	var ok bool
	if r.amount, ok = new(big.Int).SetString(amount, 10); !ok {
		return sweepRow{}, fmt.Errorf("tron sweep %s: amount %q", r.id, amount)
	}
	if r.addrBytes, err = DecodeAddress(r.address); err != nil {
		return sweepRow{}, err
	}
	return r, nil
}

// openSweep loads the address's sweep of asset in progress (topup or transfer).
func (s *Sender) openSweep(ctx context.Context, asset, addr string) (sweepRow, bool, error) {
	r, err := s.scanSweep(s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT `+sweepColumns+` FROM tron_sweeps
		WHERE asset = ? AND address = ? AND state IN (?, ?) ORDER BY round DESC LIMIT 1`), asset, addr, SweepTopUp, SweepTransfer))
	if errors.Is(err, sql.ErrNoRows) {
		return sweepRow{}, false, nil
	}
	if err != nil {
		return sweepRow{}, false, fmt.Errorf("tron sweep of %s: %w", addr, err)
	}
	return r, true, nil
}

// startSweep opens a new round when the address holds something worth
// sweeping; ok is false when it does not (an empty round is recorded) or
// when another asset's sweep of the address is in progress (a TRX sweep
// would take the TRX a token sweep's top-up brought).
func (s *Sender) startSweep(ctx context.Context, asset, addr string, index int64) (sweepRow, bool, error) {
	var open, failed, round sql.NullInt64
	if err := s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT
		SUM(CASE WHEN state IN (?, ?) THEN 1 ELSE 0 END), SUM(CASE WHEN state = ? AND asset = ? THEN 1 ELSE 0 END),
		MAX(CASE WHEN asset = ? THEN round END) FROM tron_sweeps WHERE address = ?`),
		SweepTopUp, SweepTransfer, SweepFailed, asset, asset, addr).Scan(&open, &failed, &round); err != nil {
		return sweepRow{}, false, fmt.Errorf("tron sweeps of %s: %w", addr, err)
	}
	if open.Int64 > 0 {
		return sweepRow{}, false, nil
	}
	if failed.Int64 >= maxFailedSweeps {
		return sweepRow{}, false, fmt.Errorf("tron sweep: %d sweeps of %s on %s failed; left alone until an operator looks (tron_sweeps)",
			failed.Int64, asset, addr)
	}
	addrBytes, _ := DecodeAddress(addr)
	r := sweepRow{asset: asset, address: addr, addrBytes: addrBytes, index: index, round: round.Int64 + 1, state: SweepTopUp}
	r.id = fmt.Sprintf("%s:%s:%d", asset, addr, r.round)
	var err error
	if contract, ok := s.tokens[asset]; ok {
		r.amount, err = s.balanceOf(ctx, EncodeAddress(contract), addrBytes)
		if err != nil {
			return sweepRow{}, false, err
		}
	} else {
		acc, err := s.node.Account(ctx, addr)
		if err != nil {
			return sweepRow{}, false, fmt.Errorf("tron sweep: account %s: %w", addr, err)
		}
		r.amount = big.NewInt(acc.Balance)
		// Worth it only when at least half the balance reaches the hot
		// wallet: its bandwidth at most a few hundred bytes.
		f, err := s.fees(ctx)
		if err != nil {
			return sweepRow{}, false, err
		}
		if acc.Balance <= 2*maxTRXTransferBytes*f.byteSun {
			r.amount = new(big.Int)
		}
	}
	if r.amount.Sign() == 0 {
		r.state = SweepEmpty
	}
	now := s.cfg.Now().UnixMilli()
	if _, err := s.db.Write.ExecContext(ctx, s.db.Q(`INSERT INTO tron_sweeps (`+sweepColumns+`, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, '', '', '', '', 0, 0, 0, ?, ?)`),
		r.id, asset, addr, index, r.round, r.amount.String(), r.state, now, now); err != nil {
		return sweepRow{}, false, fmt.Errorf("tron sweep: start %s: %w", r.id, err)
	}
	return r, r.state != SweepEmpty, nil
}

// maxTRXTransferBytes bounds the bandwidth of a signed TRX transfer.
const maxTRXTransferBytes = 300

func (s *Sender) saveSweep(ctx context.Context, r sweepRow) error {
	if _, err := s.db.Write.ExecContext(ctx, s.db.Q(`UPDATE tron_sweeps SET amount_units = ?, state = ?, topup_txids = ?, transfer_txid = ?,
		pending_txid = ?, pending_raw = ?, topup_sun = ?, burned_sun = ?, energy = ?, updated_at = ? WHERE sweep_id = ?`),
		r.amount.String(), r.state, r.topups, r.transfer, r.pendingTxID, r.pendingRaw, r.topupSun, r.burnedSun, r.energyEst,
		s.cfg.Now().UnixMilli(), r.id); err != nil {
		return fmt.Errorf("tron sweep %s: %w", r.id, err)
	}
	return nil
}

// sweepSteps are a sweep round's steps on the step machine. Its stage is
// the row's state: topup is StageBuild (a pending top-up is followed,
// then the next top-up or the transfer is signed, stored and sent there),
// transfer is StageSent, done and failed StageDone.
type sweepSteps struct {
	s    *Sender
	r    *sweepRow
	info *TransactionInfo // the failed transfer's, for Fail
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

func (w *sweepSteps) Build(ctx context.Context) (chain.Next, error) {
	if w.r.pendingTxID != "" { // a top-up is out
		_, settled, err := w.s.settle(ctx, w.r)
		if err != nil || !settled {
			return chain.Wait, err
		}
	}
	return chain.Wait, w.s.sendSweep(ctx, w.r)
}

// Broadcast is not reached: sendSweep signs and sends in one step.
func (w *sweepSteps) Broadcast(context.Context) (chain.Next, error) {
	return chain.Wait, fmt.Errorf("tron sweep %s: no signed stage", w.r.id)
}

func (w *sweepSteps) Follow(ctx context.Context) (chain.Outcome, error) {
	info, settled, err := w.s.settle(ctx, w.r)
	switch {
	case err != nil || !settled:
		return chain.Pending, err
	case info == nil:
		return chain.Dropped, nil
	case info.Failed():
		w.info = info
		return chain.Failed, nil
	}
	return chain.Mined, nil
}

// Rebuild: the transfer can never confirm; build it again.
func (w *sweepSteps) Rebuild(ctx context.Context) error {
	w.r.state = SweepTopUp
	return w.s.saveSweep(ctx, *w.r)
}

func (w *sweepSteps) Fail(ctx context.Context) error {
	r, info := w.r, w.info
	r.state = SweepFailed
	w.s.cfg.Logger.Error("tron: sweep transfer failed on chain; the tokens stay on the deposit address", "sweep_id", r.id,
		"txid", r.transfer, "result", info.Receipt.Result, "message", nodeMessage(info.ResMessage), "burned_trx", sunString(r.burnedSun))
	return w.s.saveSweep(ctx, *r)
}

func (w *sweepSteps) Confirm(ctx context.Context) error {
	r := w.r
	r.state = SweepDone
	if err := w.s.saveSweep(ctx, *r); err != nil {
		return err
	}
	w.s.cfg.Logger.Info("tron: sweep done", "sweep_id", r.id, "asset", r.asset, "address", r.address, "amount_units", r.amount.String(),
		"topup_trx", sunString(r.topupSun), "burned_trx", sunString(r.burnedSun), "txid", r.transfer)
	return nil
}

// settle follows the pending transaction: mined, its fee is added to the
// burned TRX and it is no longer pending (info is its receipt); in no
// block, it is rebroadcast (settled false), unless it can never confirm:
// then it is dropped (settled true, info nil).
func (s *Sender) settle(ctx context.Context, r *sweepRow) (info *TransactionInfo, settled bool, err error) {
	got, err := s.node.TransactionInfoByID(ctx, r.pendingTxID)
	switch {
	case err == nil:
		r.burnedSun += got.Fee
		// Money rule 7: what it burned is the gateway's cost. Booked
		// before the row forgets the transaction; a repeat adds nothing.
		if err := s.recordSweepCost(ctx, r, got); err != nil {
			return nil, false, fmt.Errorf("tron sweep %s: book its cost: %w", r.id, err)
		}
		r.pendingTxID, r.pendingRaw = "", ""
		return &got, true, s.saveSweep(ctx, *r)
	case !errors.Is(err, ErrNotFound):
		return nil, false, fmt.Errorf("tron sweep %s: %w", r.id, err)
	}
	berr := s.Broadcast(ctx, chain.Signed{TxID: r.pendingTxID, Raw: r.pendingRaw})
	if errors.Is(berr, chain.ErrPermanent) {
		s.cfg.Logger.Warn("tron: a sweep transaction can never confirm; building it again", "sweep_id", r.id, "txid", r.pendingTxID, "err", berr)
		if r.state == SweepTopUp { // the TRX it was to send never left the hot wallet
			r.topupSun -= signedTransferSun(r.pendingRaw)
		}
		r.pendingTxID, r.pendingRaw = "", ""
		return nil, true, s.saveSweep(ctx, *r)
	}
	return nil, false, berr
}

// signedTransferSun is the amount of a stored signed TRX transfer (0 for
// anything else).
func signedTransferSun(signedHex string) int64 {
	b, err := hex.DecodeString(signedHex)
	if err != nil {
		return 0
	}
	raw, _, err := UnmarshalTransaction(b)
	if err != nil {
		return 0
	}
	r, err := UnmarshalRawTx(raw)
	if err != nil || len(r.Contracts) != 1 || r.Contracts[0].Type != TransferContractType {
		return 0
	}
	t, err := UnmarshalTransfer(r.Contracts[0].Value)
	if err != nil {
		return 0
	}
	return t.Amount
}

// sendSweep builds the sweep's transfer; when the address cannot pay for
// it, it tops the address up from the hot wallet instead.
func (s *Sender) sendSweep(ctx context.Context, r *sweepRow) error {
	f, err := s.fees(ctx)
	if err != nil {
		return err
	}
	acc, err := s.node.Account(ctx, r.address)
	if err != nil {
		return fmt.Errorf("tron sweep: account %s: %w", r.address, err)
	}
	res, err := s.node.AccountResource(ctx, r.address)
	if err != nil {
		return fmt.Errorf("tron sweep: resources of %s: %w", r.address, err)
	}
	// An address that is not an account yet has no free bandwidth.
	bandwidth := func(size int64) int64 {
		if !acc.Exists() {
			return size * f.byteSun
		}
		return bandwidthFeeSun(size, res, f, false)
	}
	var raw RawTx
	if contract, ok := s.tokens[r.asset]; ok {
		energy, err := s.sweepEnergy(ctx, r, contract)
		if errors.Is(err, ErrDryRunReverted) {
			// Signed, it would revert on chain and burn the top-up: this
			// round fails (counted toward maxFailedSweeps), nothing sent.
			r.state = SweepFailed
			s.cfg.Logger.Error("tron: sweep dry run reverted; the tokens stay on the deposit address", "sweep_id", r.id,
				"asset", r.asset, "address", r.address, "err", err)
			return s.saveSweep(ctx, *r)
		}
		if err != nil {
			return err
		}
		burn := max(0, energy-max(0, res.EnergyLimit-res.EnergyUsed))
		energySun := ceilDiv(burn*f.energySun*(10_000+s.cfg.EnergyMarginBps), 10_000)
		feeLimit := ceilDiv(energy*f.energySun*(10_000+s.cfg.EnergyMarginBps), 10_000)
		if feeLimit > s.cfg.MaxFeeLimitSun {
			return fmt.Errorf("tron sweep %s: the transfer needs about %d energy, up to %s TRX, above the fee limit of %s TRX",
				r.id, energy, sunString(feeLimit), sunString(s.cfg.MaxFeeLimitSun))
		}
		param := transferParameter(s.hotBytes, r.amount.Int64())
		ext, err := s.node.TriggerSmartContract(ctx, TriggerRequest{OwnerAddress: r.address, ContractAddress: EncodeAddress(contract),
			FunctionSelector: "transfer(address,uint256)", Parameter: hex.EncodeToString(param), FeeLimit: feeLimit})
		if err != nil {
			return fmt.Errorf("tron sweep: triggersmartcontract: %w", err)
		}
		if !ext.Result.Result || ext.Transaction == nil {
			return fmt.Errorf("tron sweep: triggersmartcontract: %s %s", ext.Result.Code, nodeMessage(ext.Result.Message))
		}
		if raw, err = s.verifyTrigger(*ext.Transaction, r.addrBytes, contract, append(append([]byte{}, transferSelector...), param...), feeLimit); err != nil {
			return err
		}
		need := energySun + bandwidth(bandwidthBytes(raw.Marshal()))
		r.energyEst = energy
		if acc.Balance < need {
			return s.topUp(ctx, r, need-acc.Balance, !acc.Exists(), f)
		}
	} else {
		// The size does not depend on the amount but for a varint byte: a
		// build of the whole balance sizes it.
		first, err := s.node.CreateTransaction(ctx, r.address, s.hot, acc.Balance)
		if err != nil {
			return fmt.Errorf("tron sweep: createtransaction: %w", err)
		}
		if raw, err = s.verifyTransfer(first, r.addrBytes, s.hotBytes, acc.Balance); err != nil {
			return err
		}
		fee := bandwidth(bandwidthBytes(raw.Marshal()))
		if hot, err := s.node.Account(ctx, s.hot); err != nil {
			return fmt.Errorf("tron sweep: hot wallet account: %w", err)
		} else if !hot.Exists() { // the transfer activates it
			fee = bandwidthFeeSun(bandwidthBytes(raw.Marshal()), res, f, true)
		}
		amount := acc.Balance - fee
		if amount <= 0 {
			r.state = SweepFailed
			s.cfg.Logger.Warn("tron: a TRX sweep's balance no longer pays its bandwidth", "sweep_id", r.id, "balance_sun", acc.Balance)
			return s.saveSweep(ctx, *r)
		}
		tx, err := s.node.CreateTransaction(ctx, r.address, s.hot, amount)
		if err != nil {
			return fmt.Errorf("tron sweep: createtransaction: %w", err)
		}
		if raw, err = s.verifyTransfer(tx, r.addrBytes, s.hotBytes, amount); err != nil {
			return err
		}
		r.amount = big.NewInt(amount)
	}
	txid, signed, err := s.signSweepTx(ctx, custody.Request{Purpose: custody.PurposeSweep, PayoutID: r.id, Asset: r.asset}, raw, r.index)
	if err != nil {
		return err
	}
	r.state, r.transfer, r.pendingTxID, r.pendingRaw = SweepTransfer, txid, txid, signed
	if err := s.saveSweep(ctx, *r); err != nil {
		return err
	}
	s.cfg.Logger.Info("tron: sweep transfer signed", "sweep_id", r.id, "txid", txid, "amount_units", r.amount.String(), "energy", r.energyEst)
	return s.broadcastPending(ctx, r)
}

// sweepEnergy is a dry run of the address's transfer of the swept amount.
func (s *Sender) sweepEnergy(ctx context.Context, r *sweepRow, contract []byte) (int64, error) {
	sim, err := s.node.TriggerConstantContract(ctx, TriggerRequest{OwnerAddress: r.address, ContractAddress: EncodeAddress(contract),
		FunctionSelector: "transfer(address,uint256)", Parameter: hex.EncodeToString(transferParameter(s.hotBytes, r.amount.Int64()))})
	if err != nil {
		return 0, fmt.Errorf("tron sweep: energy estimate: %w", err)
	}
	energy, err := transferEnergy(sim)
	if err != nil {
		return 0, fmt.Errorf("tron sweep %s: %w", r.id, err)
	}
	return energy, nil
}

// topUp sends the deposit address amountSun of TRX from the hot wallet.
func (s *Sender) topUp(ctx context.Context, r *sweepRow, amountSun int64, activates bool, f fees) error {
	hot, err := s.node.Account(ctx, s.hot)
	if err != nil {
		return fmt.Errorf("tron sweep: hot wallet account: %w", err)
	}
	res, err := s.node.AccountResource(ctx, s.hot)
	if err != nil {
		return fmt.Errorf("tron sweep: hot wallet resources: %w", err)
	}
	tx, err := s.node.CreateTransaction(ctx, s.hot, r.address, amountSun)
	if err != nil {
		if hot.Balance < amountSun {
			return fmt.Errorf("%w: %s holds %s TRX; topping up %s for its %s sweep needs %s TRX", ErrSweepTopUpFunds, s.hot,
				sunString(hot.Balance), r.address, r.asset, sunString(amountSun))
		}
		return fmt.Errorf("tron sweep: createtransaction: %w", err)
	}
	raw, err := s.verifyTransfer(tx, s.hotBytes, r.addrBytes, amountSun)
	if err != nil {
		return err
	}
	need := amountSun + bandwidthFeeSun(bandwidthBytes(raw.Marshal()), res, f, activates)
	if hot.Balance < need {
		return fmt.Errorf("%w: %s holds %s TRX; topping up %s for its %s sweep needs %s TRX", ErrSweepTopUpFunds, s.hot,
			sunString(hot.Balance), r.address, r.asset, sunString(need))
	}
	txid, signed, err := s.signSweepTx(ctx, custody.Request{Purpose: custody.PurposeTopUp, PayoutID: r.id, Asset: s.native, ToIndex: r.index},
		raw, s.cfg.HotWalletIndex)
	if err != nil {
		return err
	}
	if r.topups != "" {
		r.topups += ","
	}
	r.topups += txid
	r.topupSun += amountSun
	r.pendingTxID, r.pendingRaw = txid, signed
	if err := s.saveSweep(ctx, *r); err != nil {
		return err
	}
	s.cfg.Logger.Info("tron: sweep top-up", "sweep_id", r.id, "topup_trx", sunString(amountSun), "activates", activates, "txid", txid)
	return s.broadcastPending(ctx, r)
}

// signSweepTx sets the expiration and signs with the key at index.
func (s *Sender) signSweepTx(ctx context.Context, req custody.Request, raw RawTx, index int64) (txid, signedHex string, err error) {
	base := raw.Timestamp
	if base == 0 {
		base = s.cfg.Now().UnixMilli()
	}
	raw.Expiration = base + s.cfg.Expiration.Milliseconds()
	signed, txid, err := s.sign(ctx, req, raw.Marshal(), index)
	if err != nil {
		return "", "", err
	}
	return txid, hex.EncodeToString(signed), nil
}

// broadcastPending sends the stored pending transaction; a refusal is
// logged and left to the next step (settle), which rebroadcasts or drops it.
func (s *Sender) broadcastPending(ctx context.Context, r *sweepRow) error {
	if err := s.Broadcast(ctx, chain.Signed{TxID: r.pendingTxID, Raw: r.pendingRaw}); err != nil {
		s.cfg.Logger.Warn("tron: sweep broadcast", "sweep_id", r.id, "txid", r.pendingTxID, "err", err)
	}
	return nil
}

// balanceOf reads an address's balance of a token (base58 contract).
func (s *Sender) balanceOf(ctx context.Context, contract string, owner []byte) (*big.Int, error) {
	param := make([]byte, 32)
	copy(param[12:], owner[1:])
	ext, err := s.node.TriggerConstantContract(ctx, TriggerRequest{OwnerAddress: EncodeAddress(owner), ContractAddress: contract,
		FunctionSelector: "balanceOf(address)", Parameter: hex.EncodeToString(param)})
	if err != nil {
		return nil, fmt.Errorf("tron token balance: %w", err)
	}
	if !ext.Result.Result || len(ext.ConstantResult) != 1 {
		return nil, fmt.Errorf("tron token balance: %s %s", ext.Result.Code, nodeMessage(ext.Result.Message))
	}
	b, err := hex.DecodeString(ext.ConstantResult[0])
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("tron token balance: unexpected result %q", ext.ConstantResult[0])
	}
	v := new(big.Int).SetBytes(b)
	if !v.IsInt64() {
		return nil, fmt.Errorf("tron token balance: %s does not fit a transfer we build", v)
	}
	return v, nil
}

// SweepDeposits advances the sweep of every address with a final deposit
// (tron_deposits: credited, its block final; one a reorg can still undo
// is left where it is) not yet covered by a finished sweep, and returns what each did. It is meant to run
// periodically (cmd/picd); an address whose sweep fails is logged and the
// others go on; the first error is returned. Errors: no Invoices in the
// config, node and database errors, ErrSweepTopUpFunds.
func (s *Sender) SweepDeposits(ctx context.Context) ([]SweepResult, error) {
	if s.cfg.Invoices == nil {
		return nil, errors.New("tron sweep: SweepDeposits needs SenderConfig.Invoices")
	}
	// A deposit is covered by a finished (or empty) round started after it
	// was final: that round saw its tokens. Open rounds are resumed.
	// The key is that of an invoice on the address: a deposit an operator
	// credited to another invoice (picd chain unmatched credit) is on
	// the address it was paid to, not on that invoice's.
	targets, err := chain.SweepTargets(ctx, s.db, `SELECT d.asset, d.address, (SELECT MIN(i.invoice_id) FROM invoices i WHERE i.pay_address = d.address) FROM tron_deposits d
		WHERE d.confirmed = 1 AND d.state = ? AND d.invoice_id <> ''
		AND NOT EXISTS (SELECT 1 FROM tron_sweeps w WHERE w.asset = d.asset AND w.address = d.address AND w.state IN (?, ?) AND w.created_at >= d.updated_at)
		GROUP BY d.asset, d.address ORDER BY d.asset, d.address LIMIT ?`, scanFinal, SweepDone, SweepEmpty, maxSweepRows)
	if err != nil {
		return nil, fmt.Errorf("tron sweep: deposits to sweep: %w", err)
	}
	// Payout costs the log refused before are appended again first.
	costsErr := s.BookPayoutCosts(ctx)
	if costsErr != nil {
		s.cfg.Logger.Error("tron: booking payout network costs failed", "err", costsErr)
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
			if a, derr := s.addressAt(index); derr != nil || a != t.Address {
				err = fmt.Errorf("tron sweep: %s is not our address at index %d", t.Address, index)
			}
		}
		var res SweepResult
		if err == nil {
			res, err = s.Sweep(ctx, t.Asset, index)
		}
		if err != nil {
			s.cfg.Logger.Error("tron: sweep failed", "asset", t.Asset, "address", t.Address, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		if res.State != SweepNothing && res.State != SweepEmpty {
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
// into the hot wallet: each token first, then, once no token of it is
// left to move, its TRX (less the transfer's bandwidth). startSweep
// already keeps a TRX sweep from starting while a token sweep of the
// address is open; the order here keeps it from taking the TRX a token
// transfer is about to burn. A wallet found empty of everything is not
// looked at again until the process restarts: each look records an empty
// round per asset and costs API requests.
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
		sweep := func(asset string) {
			res, err := s.Sweep(ctx, asset, key)
			if err != nil {
				s.cfg.Logger.Error("tron: moving a retired hot wallet's funds failed", "asset", asset, "key", key, "err", err)
				if first == nil {
					first = err
				}
				tokensLeft = true
				return
			}
			if res.State != SweepNothing && res.State != SweepEmpty {
				out = append(out, res)
				found = true
			}
			if res.State == SweepTopUp || res.State == SweepTransfer {
				tokensLeft = true
			}
		}
		for _, code := range codes {
			sweep(code)
		}
		if !tokensLeft && s.native != "" {
			sweep(s.native)
		}
		if !found && !tokensLeft {
			s.retiredMoved.Store(key, true)
		}
	}
	return out, first
}

// addressAt derives from the public keys: with a separate signer
// (custody.Client) the sender's wallet holds no private key.
func (s *Sender) addressAt(index int64) (string, error) {
	return s.keys.Address(domain.ChainTron, index)
}

// recordSweepCost books the TRX a mined sweep transaction burned: a top-up
// is paid by the hot wallet, a transfer by the deposit address.
func (s *Sender) recordSweepCost(ctx context.Context, r *sweepRow, info TransactionInfo) error {
	if s.cfg.Costs == nil || s.native == "" || info.Fee <= 0 {
		return nil
	}
	kind, from := domain.CostSweepBurn, r.address
	if r.state == SweepTopUp {
		kind, from = domain.CostTopUpBurn, s.hot
	}
	return s.cfg.Costs(ctx, commands.RecordNetworkCost{Chain: domain.ChainTron, TxID: r.pendingTxID, Kind: kind, Asset: s.native,
		Amount: domain.FromBaseUnits(big.NewInt(info.Fee), 6), From: from, Ref: r.id, Block: uint64(max(0, info.BlockNumber))})
}
