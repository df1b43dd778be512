package chain

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/acceptcryptohere/gateway/backoff"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// PayoutToSend is what a Sender needs to build one payout's transaction.
type PayoutToSend struct {
	PayoutID   string
	MerchantID string // the signer finds the payout's request in the merchant's funds stream
	Asset      domain.Asset
	ToAddress  string
	// Amount is the payout before the network fee: the transaction sends
	// Amount − NetworkFee to ToAddress (net_of_network_fee: false).
	Amount domain.Amount
	// RequestVersion is the version of the payout's PayoutRequested in the
	// funds stream: the signer reads that one event instead of the stream.
	RequestVersion int64
}

// Signed is a built and signed transaction; it is recorded in the log
// (PayoutSigned) before Broadcast ever sees it.
type Signed = domain.SignedTx

// ErrPermanent marks a Sender error that retrying cannot fix: the payout
// fails and its reservation is released. Wrap it (fmt.Errorf("%w: …",
// chain.ErrPermanent)). Every other error is temporary and retried with backoff.
var ErrPermanent = errors.New("chain: permanent payout error")

// ErrHeld marks a Build error that only an operator ends: a separate
// signer holds the payout beyond its limits until `picd signer approve`.
// The processor asks again every RetryBase without counting an attempt,
// so a held payout waits as long as it takes and is never failed for it.
var ErrHeld = errors.New("chain: payout held")

// ErrWrongNode: the chain's node is not the one the gateway recorded (a
// node of another chain behind the same URL, issue #16). Nothing is
// signed, broadcast or counted as confirmed against it: the payout waits,
// without counting an attempt, until the right node answers.
var ErrWrongNode = errors.New("chain: the node is not of the recorded chain")

// Sender builds, signs and broadcasts payouts from the gateway's hot
// wallet on one chain. The payout processor drives it:
//
//	Build → (PayoutSigned recorded) → Broadcast → (PayoutSent) → Confirmations ≥ the asset's → (PayoutConfirmed)
//
// Contract for implementations (chain/btc, chain/eth, chain/sim):
//
//   - Build signs, never broadcasts. It returns the txid, the raw signed
//     transaction (hex) and what it spends (Bitcoin Inputs, Ethereum
//     Nonce), and the network fee in the payout's asset (for tokens: the
//     gas cost converted into the token, or 0 with the gas booked by the
//     sender's own records). The fee is deducted from Amount; a fee ≥ Amount
//     fails the payout. Errors: ErrPermanent for an invalid address or a
//     hot wallet that cannot cover Amount; others are temporary.
//     Build may be called again for the same PayoutID when the process
//     stopped before PayoutSigned was recorded. That earlier transaction was
//     never broadcast, so an implementation may reuse what it had locked
//     for the payout (same UTXOs, same nonce) or release it.
//   - Broadcast sends exactly the recorded transaction. It must be
//     idempotent: a transaction the node already has (mempool or chain) is
//     success. Errors: ErrPermanent only when this transaction can never
//     confirm (for example its inputs were spent by another); anything
//     else (node down, timeouts) is temporary and retried with the SAME
//     transaction, never a rebuilt one.
//   - Confirmations returns the transaction's depth (0 in the mempool).
//     An unknown txid is an error (temporary: the processor asks again).
//     ErrPermanent when the transaction can never confirm (mined but
//     reverted, or expired without being mined): the payout fails and the
//     merchant's funds are released.
type Sender interface {
	Chain() domain.Chain
	Build(ctx context.Context, p PayoutToSend) (Signed, error)
	Broadcast(ctx context.Context, tx Signed) error
	Confirmations(ctx context.Context, txid string) (int, error)
}

// FeeOnTopSender is a Sender that can also build a transaction that sends
// exactly p.Amount to p.ToAddress, the network fee paid on top of it (a
// refund: the customer receives exactly the amount). The fee it returns
// is what the merchant is debited on top. Same contract as Build
// otherwise; a payout is only ever built one way.
type FeeOnTopSender interface {
	Sender
	BuildFeeOnTop(ctx context.Context, p PayoutToSend) (Signed, error)
}

// DefaultMaxBuildAttempts is ProcessorConfig.MaxBuildAttempts' default.
const DefaultMaxBuildAttempts = 12

// Releaser is a Sender that frees what a build took (Bitcoin inputs, an
// Ethereum nonce) for a payout that ended, failed or canceled, before its
// transaction was recorded as signed: nothing broadcast that transaction
// and nothing ever will. The processor calls Release until it succeeds;
// it must be idempotent.
type Releaser interface {
	Sender
	Release(ctx context.Context, payoutID string) error
}

// PaidFeeSender is a Sender that learns, once a transaction is mined, the
// network fee it paid when that can be less than the fee recorded when
// signed (Ethereum: gas used × effective gas price, under the fee cap).
// PaidFee returns it in the payout's asset; ok is false when the signed
// fee stands (a token payout's fee is 0 in the token, whatever its gas).
type PaidFeeSender interface {
	Sender
	PaidFee(ctx context.Context, txid string, asset domain.Asset) (fee domain.Amount, ok bool, err error)
}

// ProcessorConfig tunes the payout processor. Zero values get the defaults noted.
type ProcessorConfig struct {
	Now func() time.Time
	// RetryBase is the first retry delay after a temporary error (default
	// 5 s); it doubles per attempt up to RetryMax (default 10 min).
	RetryBase, RetryMax time.Duration
	// PollInterval is how often a sent payout's confirmations are checked (default 30 s).
	PollInterval time.Duration
	// MaxBuildAttempts bounds the temporary errors of a payout not yet
	// signed (default 12: about an hour with the default backoff): past
	// it the payout fails and its funds are released. A signed payout is
	// never failed for a temporary error: its transaction may still reach
	// a block.
	MaxBuildAttempts int
	// CheckNode, when set, is asked before every build, broadcast and
	// confirmation count whether the chain's node is the recorded one; an
	// error (wrapped in ErrWrongNode) makes the payout wait.
	CheckNode func(ctx context.Context, c domain.Chain) error
	Logger    *slog.Logger
}

// Processor turns payout requests into transactions. Its intake is a log
// subscriber: every PayoutRequested becomes a payout_jobs row, written in
// the transaction that moves its checkpoint (payout_intake), so none is
// skipped or taken twice. Its worker drives each due job one step at a
// time from the payout's state in the log (never from the row), so a
// restart at any point resumes correctly: a signed payout is rebroadcast
// with its recorded transaction, never signed again.
type Processor struct {
	store    eventstore.Store
	db       sqldb.DB
	commands commands.Handlers
	assets   domain.Assets
	senders  map[domain.Chain]Sender
	cfg      ProcessorConfig
	intake   *subscription
}

// NewProcessor builds a processor; run Migrate on db first.
func NewProcessor(store eventstore.Store, db sqldb.DB, h commands.Handlers, assets domain.Assets, senders []Sender, cfg ProcessorConfig) *Processor {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 5 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 10 * time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 30 * time.Second
	}
	if cfg.MaxBuildAttempts <= 0 {
		cfg.MaxBuildAttempts = DefaultMaxBuildAttempts
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	byChain := map[domain.Chain]Sender{}
	for _, s := range senders {
		byChain[s.Chain()] = s
	}
	return &Processor{store: store, db: db, commands: h, assets: assets, senders: byChain, cfg: cfg,
		intake: &subscription{store: store, db: db, name: payoutIntakeName, batch: 500, gather: gatherRare, types: []string{domain.TypePayoutRequested}}}
}

// Run takes in requests and drives due payouts until ctx ends.
func (p *Processor) Run(ctx context.Context) error {
	intakeDone := make(chan struct{})
	defer func() { <-intakeDone }() // the intake writes too: stop it before returning
	go func() {
		defer close(intakeDone)
		_ = p.intake.run(ctx, func(err error) { p.cfg.Logger.Error("payout intake failed; retrying", "err", err) }, p.intakeStep)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if _, err := p.Pass(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Error("payout pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// CatchUp takes in every request now in the log (for tools and tests).
func (p *Processor) CatchUp(ctx context.Context) error {
	for {
		more, _, err := p.intakeStep(ctx)
		if err != nil || !more {
			return err
		}
	}
}

func (p *Processor) intakeStep(ctx context.Context) (bool, eventstore.Position, error) {
	return p.intake.step(ctx, nil, func(ctx context.Context, tx *sql.Tx, recs []eventstore.RecordedEvent) error {
		for _, rec := range recs {
			if rec.Type != domain.TypePayoutRequested {
				continue
			}
			e, err := domain.DecodeStored(rec.Type, rec.Data, rec.Metadata)
			if err != nil {
				return err
			}
			r := e.(domain.PayoutRequested)
			if _, err := tx.ExecContext(ctx, p.db.Q(`INSERT INTO payout_jobs (payout_id, merchant_id, asset, request_version, next_attempt_at, created_at)
				VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (payout_id) DO NOTHING`),
				r.PayoutID, r.MerchantID, r.Asset, rec.Version, 0, p.cfg.Now().UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
}

type job struct {
	ref      commands.PayoutRef
	attempts int
}

// maxJobsPerPass bounds one pass.
const maxJobsPerPass = 200

// Pass drives every due job one or more steps (as far as it can go without
// waiting) and returns how many it looked at.
func (p *Processor) Pass(ctx context.Context) (int, error) {
	rows, err := p.db.Read.QueryContext(ctx, p.db.Q(`SELECT payout_id, merchant_id, asset, request_version, attempts FROM payout_jobs
		WHERE next_attempt_at <= ? ORDER BY next_attempt_at, payout_id LIMIT ?`), p.cfg.Now().UnixMilli(), maxJobsPerPass)
	if err != nil {
		return 0, fmt.Errorf("payout jobs: %w", err)
	}
	var jobs []job
	for rows.Next() {
		var j job
		if err := rows.Scan(&j.ref.PayoutID, &j.ref.MerchantID, &j.ref.Asset, &j.ref.RequestVersion, &j.attempts); err != nil {
			rows.Close()
			return 0, err
		}
		jobs = append(jobs, j)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, j := range jobs {
		if err := p.drive(ctx, j); err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			p.cfg.Logger.Error("payout step failed", "payout_id", j.ref.PayoutID, "err", err)
		}
	}
	return len(jobs), nil
}

// drive moves one payout as far as it can go now, on the step machine:
// requested → signed → sent → confirmed at most. A permanent error fails
// the payout and releases its funds; any other is retried with backoff,
// and before anything is signed at most MaxBuildAttempts times.
func (p *Processor) drive(ctx context.Context, j job) error {
	ps := &payoutSteps{p: p, job: &j}
	stage, err := Drive(ctx, ps, 4)
	switch {
	case errors.Is(err, ErrPermanent):
		return p.fail(ctx, j.ref, err.Error())
	case errors.Is(err, ErrWrongNode):
		p.cfg.Logger.Warn("payout waits for the chain's recorded node", "payout_id", j.ref.PayoutID, "stage", stage, "reason", err.Error())
		return p.later(ctx, j.ref, p.cfg.RetryBase, err.Error())
	case errors.Is(err, ErrHeld) && stage == StageBuild:
		p.cfg.Logger.Warn("payout held by the signer", "payout_id", j.ref.PayoutID, "reason", err.Error())
		return p.later(ctx, j.ref, p.cfg.RetryBase, err.Error())
	case err != nil && stage == StageBuild && j.attempts+1 >= p.cfg.MaxBuildAttempts:
		// Nothing was broadcast (only a signed payout is): failing is safe.
		return p.fail(ctx, j.ref, fmt.Sprintf("not sent after %d attempts: %v", j.attempts+1, err))
	case err != nil:
		return p.retry(ctx, j, err)
	case stage == StageDone:
		if err := p.done(ctx, j.ref); err != nil {
			return p.retry(ctx, j, err)
		}
		return nil
	case stage == StageSent:
		return p.later(ctx, j.ref, p.cfg.PollInterval, "")
	}
	return nil
}

// failReason is a permanent error whose text is the failure reason as it is.
type failReason string

func (e failReason) Error() string        { return string(e) }
func (e failReason) Is(target error) bool { return target == ErrPermanent }

// payoutSteps are a payout's steps: its stage is its status in the log,
// loaded again before every step, never the job's row.
type payoutSteps struct {
	p      *Processor
	job    *job
	po     *domain.Payout
	asset  domain.Asset
	sender Sender
	n      int // confirmations Follow saw
}

var _ Steps = (*payoutSteps)(nil)

func (s *payoutSteps) Stage(ctx context.Context) (Stage, error) {
	ref := s.job.ref
	po, err := commands.LoadPayout(ctx, s.p.store, ref)
	if err != nil {
		return StageBuild, err
	}
	asset, err := s.p.assets.Lookup(ref.Asset)
	if err != nil {
		return StageBuild, err
	}
	if po.Terminal() {
		return StageDone, nil
	}
	s.po, s.asset = po, asset
	if s.sender = s.p.senders[asset.Chain]; s.sender == nil {
		return StageBuild, fmt.Errorf("no payout sender for chain %s", asset.Chain)
	}
	switch po.Status() {
	case domain.PayoutSignedStatus:
		return StageSigned, nil
	case domain.PayoutSentStatus:
		return StageSent, nil
	}
	return StageBuild, nil
}

// checkNode asks ProcessorConfig.CheckNode about the sender's chain.
func (s *payoutSteps) checkNode(ctx context.Context) error {
	if s.p.cfg.CheckNode == nil {
		return nil
	}
	if err := s.p.cfg.CheckNode(ctx, s.sender.Chain()); err != nil {
		return fmt.Errorf("%w: %v", ErrWrongNode, err)
	}
	return nil
}

func (s *payoutSteps) Build(ctx context.Context) (Next, error) {
	ref := s.job.ref
	if err := s.checkNode(ctx); err != nil {
		return Wait, err
	}
	tx, err := s.p.build(ctx, s.sender, s.asset, s.po.Request(), s.job.ref.RequestVersion)
	if errors.Is(err, ErrPermanent) {
		return Wait, err
	}
	if err != nil {
		return Wait, fmt.Errorf("build: %w", err)
	}
	_, err = s.p.commands.SignPayout.Handle(ctx, commands.SignPayout{CommandID: "sign/" + ref.PayoutID, Ref: ref, Tx: tx})
	if errors.Is(err, domain.ErrInvalidAmount) || errors.Is(err, domain.ErrValidation) {
		// Never recorded, so never broadcast: failing is safe.
		return Wait, failReason("cannot send: " + err.Error())
	}
	if err != nil {
		return Wait, fmt.Errorf("record signed: %w", err)
	}
	s.p.cfg.Logger.Info("payout signed", "payout_id", ref.PayoutID, "txid", tx.TxID)
	// Continue: broadcast what the log recorded (after a crash before the
	// append, that is an earlier build, not tx).
	return Continue, nil
}

func (s *payoutSteps) Broadcast(ctx context.Context) (Next, error) {
	ref, signed := s.job.ref, s.po.Signed()
	if err := s.checkNode(ctx); err != nil {
		return Wait, err
	}
	err := s.sender.Broadcast(ctx, signed.Tx())
	if errors.Is(err, ErrPermanent) {
		return Wait, err
	}
	if err != nil {
		s.p.cfg.Logger.Warn("broadcast failed; retrying the same transaction", "payout_id", ref.PayoutID, "txid", signed.TxID,
			"attempt", s.job.attempts+1, "err", err)
		return Wait, fmt.Errorf("broadcast: %w", err)
	}
	if _, err := s.p.commands.MarkPayoutSent.Handle(ctx, commands.MarkPayoutSent{CommandID: "sent/" + ref.PayoutID, Ref: ref}); err != nil {
		return Wait, fmt.Errorf("record sent: %w", err)
	}
	s.p.cfg.Logger.Info("payout sent", "payout_id", ref.PayoutID, "txid", signed.TxID)
	s.job.attempts = 0
	return Continue, nil
}

// Follow: ErrPermanent from the sender (mined but failed, or expired
// unmined) is returned as it is, and drive fails the payout with it.
func (s *payoutSteps) Follow(ctx context.Context) (Outcome, error) {
	if err := s.checkNode(ctx); err != nil {
		return Pending, err
	}
	n, err := s.sender.Confirmations(ctx, s.po.Signed().TxID)
	if errors.Is(err, ErrPermanent) {
		return Pending, err
	}
	if err != nil {
		return Pending, fmt.Errorf("confirmations: %w", err)
	}
	if n < s.asset.Confirmations {
		return Pending, nil
	}
	s.n = n
	return Mined, nil
}

func (s *payoutSteps) Confirm(ctx context.Context) error {
	ref := s.job.ref
	c := commands.ConfirmPayout{CommandID: "confirm/" + ref.PayoutID, Ref: ref, Confirmations: s.n}
	if pf, ok := s.sender.(PaidFeeSender); ok {
		fee, ok, err := pf.PaidFee(ctx, s.po.Signed().TxID, s.asset)
		if err != nil {
			return fmt.Errorf("fee paid: %w", err)
		}
		if ok {
			c.PaidFee = &fee
		}
	}
	if _, err := s.p.commands.ConfirmPayout.Handle(ctx, c); err != nil {
		return fmt.Errorf("record confirmed: %w", err)
	}
	s.p.cfg.Logger.Info("payout confirmed", "payout_id", ref.PayoutID, "txid", s.po.Signed().TxID, "confirmations", s.n)
	return nil
}

// Fail and Rebuild are not reached: a payout's Follow reports a failed
// transaction as ErrPermanent (its reason), and never drops one.
func (s *payoutSteps) Fail(context.Context) error {
	return fmt.Errorf("%w: payout transaction failed", ErrPermanent)
}

func (s *payoutSteps) Rebuild(context.Context) error {
	return fmt.Errorf("%w: a payout is never built twice", ErrPermanent)
}

// build builds a payout's transaction. A refund sends exactly its amount,
// the network fee on top: only a FeeOnTopSender can build it (Build takes
// the fee out of the amount, and a sender may hand back its first build of
// a payout when asked again, so building twice to learn the fee is no
// way). On a chain whose sender cannot, the refund fails cleanly and its
// funds are released.
func (p *Processor) build(ctx context.Context, sender Sender, asset domain.Asset, req domain.PayoutRequested, version int64) (Signed, error) {
	to := PayoutToSend{PayoutID: req.PayoutID, MerchantID: req.MerchantID, Asset: asset, ToAddress: req.ToAddress, Amount: req.Amount,
		RequestVersion: version}
	if req.Kind != domain.PayoutKindRefund {
		return sender.Build(ctx, to)
	}
	exact, ok := sender.(FeeOnTopSender)
	if !ok {
		return Signed{}, fmt.Errorf("%w: refunds are not supported on %s yet (its sender cannot send an exact amount)", ErrPermanent, asset.Chain)
	}
	return exact.BuildFeeOnTop(ctx, to)
}

func (p *Processor) fail(ctx context.Context, ref commands.PayoutRef, reason string) error {
	if _, err := p.commands.FailPayout.Handle(ctx, commands.FailPayout{CommandID: "fail/" + ref.PayoutID, Ref: ref, Reason: reason}); err != nil {
		return fmt.Errorf("record failed: %w", err)
	}
	p.cfg.Logger.Warn("payout failed; funds released", "payout_id", ref.PayoutID, "reason", reason)
	return p.done(ctx, ref)
}

// done forgets an ended payout's job, once its sender released what a
// build took for it if it ended unsigned.
func (p *Processor) done(ctx context.Context, ref commands.PayoutRef) error {
	if err := p.release(ctx, ref); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	_, err := p.db.Write.ExecContext(ctx, p.db.Q(`DELETE FROM payout_jobs WHERE payout_id = ?`), ref.PayoutID)
	return err
}

func (p *Processor) release(ctx context.Context, ref commands.PayoutRef) error {
	po, err := commands.LoadPayout(ctx, p.store, ref)
	if err != nil {
		return err
	}
	if !po.Released() || po.IsSigned() {
		return nil // confirmed, or its transaction is the log's: nothing to free
	}
	asset, err := p.assets.Lookup(ref.Asset)
	if err != nil {
		return err
	}
	if r, ok := p.senders[asset.Chain].(Releaser); ok {
		return r.Release(ctx, ref.PayoutID)
	}
	return nil
}

// retry schedules the job after an exponential backoff.
func (p *Processor) retry(ctx context.Context, j job, cause error) error {
	delay := backoff.Policy{Base: p.cfg.RetryBase, Max: p.cfg.RetryMax}.Delay(j.attempts + 1)
	_, err := p.db.Write.ExecContext(ctx, p.db.Q(`UPDATE payout_jobs SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE payout_id = ?`),
		p.cfg.Now().Add(delay).UnixMilli(), cause.Error(), j.ref.PayoutID)
	if err != nil {
		return err
	}
	return cause
}

// later looks at the job again after d without counting an attempt.
func (p *Processor) later(ctx context.Context, ref commands.PayoutRef, d time.Duration, note string) error {
	_, err := p.db.Write.ExecContext(ctx, p.db.Q(`UPDATE payout_jobs SET attempts = 0, next_attempt_at = ?, last_error = ? WHERE payout_id = ?`),
		p.cfg.Now().Add(d).UnixMilli(), note, ref.PayoutID)
	return err
}

// Settlement is the process manager of final payments: a log subscriber
// (checkpoint settlement) that sends one SettleDeposit per
// DepositFinalized, which converts (settle_as, consolidate_to) and requests
// the instant payout, and one NoteBalance per credited DepositReverted,
// which records a BalanceNegative when the reversal left a debt. Its
// outputs are commands whose ids derive from the event's id, so handling
// an event again (after a crash between the commands and the checkpoint)
// records nothing new: delivery is at least once, the effect exactly once.
//
// A payment whose conversion has no price does not hold back the others
// (money rule 3): it is written to settlement_waits with the checkpoint
// and retried on its own with backoff, until MaxWait, when it is credited
// unconverted.
type Settlement struct {
	sub      *subscription
	db       sqldb.DB
	commands commands.Handlers
	log      *slog.Logger
	now      func() time.Time
	maxWait  time.Duration
	seq      atomic.Int64 // orders the waits written in one millisecond
}

// DefaultConversionMaxWait is how long a payment waits for a price before
// it is credited unconverted (PIC_CONVERSION_MAX_WAIT).
const DefaultConversionMaxWait = time.Hour

// NewSettlement builds the process manager; run Migrate on db first.
func NewSettlement(store eventstore.Store, db sqldb.DB, h commands.Handlers, log *slog.Logger) *Settlement {
	if log == nil {
		log = slog.Default()
	}
	return &Settlement{sub: &subscription{store: store, db: db, name: settlementName, batch: 100, gather: gatherRare,
		types: []string{domain.TypeDepositFinalized, domain.TypeDepositReverted}},
		db: db, commands: h, log: log, now: time.Now, maxWait: DefaultConversionMaxWait}
}

// SetWaits sets the clock of the waits for a price and the longest wait
// (zero or negative keeps the default).
func (s *Settlement) SetWaits(now func() time.Time, maxWait time.Duration) {
	if now != nil {
		s.now = now
	}
	if maxWait > 0 {
		s.maxWait = maxWait
	}
}

// Run handles the log until ctx ends, and retries the waiting conversions.
func (s *Settlement) Run(ctx context.Context) error {
	waitsDone := make(chan struct{})
	defer func() { <-waitsDone }() // the retries write too: stop them before returning
	go func() {
		defer close(waitsDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if _, err := s.RetryWaits(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("settlement: waiting conversions", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s.sub.run(ctx, func(err error) { s.log.Error("settlement failed; retrying", "err", err) }, s.step)
}

// CatchUp handles everything now in the log (for tools and tests); waits
// that are due are retried by RetryWaits, not here.
func (s *Settlement) CatchUp(ctx context.Context) error {
	for {
		more, _, err := s.step(ctx)
		if err != nil || !more {
			return err
		}
	}
}

type priceWait struct {
	eventID  string
	position eventstore.Position
	data     []byte
}

func (s *Settlement) step(ctx context.Context) (bool, eventstore.Position, error) {
	var waits []priceWait
	return s.sub.step(ctx, func(ctx context.Context, recs []eventstore.RecordedEvent) error {
		waits = waits[:0]
		for _, rec := range recs {
			e, err := domain.DecodeStored(rec.Type, rec.Data, rec.Metadata)
			if err != nil {
				return err
			}
			switch e := e.(type) {
			case domain.DepositFinalized:
				err := s.settle(ctx, commands.SettleDeposit{EventID: rec.ID, Deposit: e, Position: rec.Position})
				if errors.Is(err, domain.ErrPriceUnavailable) {
					// The body in this build's shape (upcast), as the retry decodes it.
					data, err := domain.Encode(e)
					if err != nil {
						return err
					}
					waits = append(waits, priceWait{eventID: rec.ID, position: rec.Position, data: data})
					continue
				}
				if err != nil {
					return fmt.Errorf("settle %s: %w", rec.ID, err)
				}
			case domain.DepositReverted:
				if e.Fee == nil {
					continue // never credited: no balance moved
				}
				note, err := s.commands.NoteBalance.Handle(ctx, commands.NoteBalance{CauseID: rec.ID, MerchantID: e.MerchantID, Asset: e.Asset,
					InvoiceID: e.InvoiceID, AtLeast: rec.Position})
				if err != nil && !errors.Is(err, commands.ErrMoneyOutUnavailable) {
					return fmt.Errorf("balance after %s: %w", rec.ID, err)
				}
				if note != nil {
					s.log.Warn("balance negative after a reversal", "merchant_id", e.MerchantID, "asset", e.Asset, "available", note.Available)
				}
			}
		}
		return nil
	}, func(ctx context.Context, tx *sql.Tx, _ []eventstore.RecordedEvent) error {
		now := s.now().UnixMilli()
		for _, w := range waits {
			if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO settlement_waits (event_id, position, data, since, attempts, next_attempt_at, last_error, seq)
				VALUES (?, ?, ?, ?, 0, ?, '', ?) ON CONFLICT (event_id) DO NOTHING`),
				w.eventID, w.position.String(), string(w.data), now, now+waitBase.Milliseconds(), s.nextSeq(now)); err != nil {
				return err
			}
		}
		return nil
	})
}

// nextSeq is a wait's insertion order: its millisecond, then a counter
// (the injected clock may stand still; a restart is a later millisecond).
func (s *Settlement) nextSeq(nowMs int64) int64 {
	return nowMs*1_000_000 + s.seq.Add(1)%1_000_000
}

func (s *Settlement) settle(ctx context.Context, c commands.SettleDeposit) error {
	res, err := s.commands.SettleDeposit.Handle(ctx, c)
	if err != nil {
		return err
	}
	if res.Payout != nil {
		s.log.Info("instant payout requested", "payout_id", res.Payout.Payout.PayoutID, "invoice_id", res.Payout.Payout.SourceInvoiceID)
	}
	return nil
}

// Backoff of a conversion waiting for a price.
const (
	waitBase = 5 * time.Second
	waitMax  = 5 * time.Minute
)

// RetryWaits settles the waiting payments that are due: converted if a
// price is there now, credited unconverted once they waited maxWait. It
// returns how many it settled.
func (s *Settlement) RetryWaits(ctx context.Context) (int, error) {
	now := s.now()
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT event_id, position, data, since, attempts FROM settlement_waits
		WHERE next_attempt_at <= ? ORDER BY next_attempt_at, seq LIMIT 100`), now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("settlement waits: %w", err)
	}
	type due struct {
		id, pos, data string
		since         int64
		attempts      int
	}
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.pos, &d.data, &d.since, &d.attempts); err != nil {
			rows.Close()
			return 0, err
		}
		list = append(list, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	settled := 0
	for _, d := range list {
		pos, err := eventstore.ParsePosition(d.pos)
		if err != nil {
			return settled, err
		}
		e, err := domain.Decode(domain.TypeDepositFinalized, []byte(d.data))
		if err != nil {
			return settled, err
		}
		c := commands.SettleDeposit{EventID: d.id, Deposit: e.(domain.DepositFinalized), Position: pos}
		if waited := now.Sub(time.UnixMilli(d.since)); waited >= s.maxWait {
			c.GiveUp, c.GiveUpReason = true, fmt.Sprintf("no price for the conversion within %s", s.maxWait)
		}
		err = s.settle(ctx, c)
		if err != nil {
			delay := waitBase << min(d.attempts+1, 16)
			if delay > waitMax || delay <= 0 {
				delay = waitMax
			}
			if _, uerr := s.db.Write.ExecContext(ctx, s.db.Q(`UPDATE settlement_waits SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?
				WHERE event_id = ?`), now.Add(delay).UnixMilli(), err.Error(), d.id); uerr != nil {
				return settled, uerr
			}
			continue
		}
		if _, err := s.db.Write.ExecContext(ctx, s.db.Q(`DELETE FROM settlement_waits WHERE event_id = ?`), d.id); err != nil {
			return settled, err
		}
		settled++
	}
	return settled, nil
}

// Waiting counts the payments whose conversion waits for a price (for metrics).
func (s *Settlement) Waiting(ctx context.Context) (int, error) {
	var n int
	err := s.db.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM settlement_waits`).Scan(&n)
	return n, err
}
