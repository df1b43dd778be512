package chain

import (
	"context"
	"fmt"
)

// Stage is where a transaction of ours is in the one step machine every
// sender runs, whatever it is for (a payout, a refund, a sweep round):
//
//	build → record signed → broadcast → follow → confirm | fail
//
// The use case keeps its stage where it survives a restart (a payout in
// the log, a sweep in its table), so the machine resumes at any point.
type Stage int

const (
	// StageBuild: nothing is signed yet (or a build waits, for example
	// for a sweep's gas top-up to be mined).
	StageBuild Stage = iota
	// StageSigned: signed and recorded, not yet accepted by a node.
	StageSigned
	// StageSent: a node accepted it; follow it until it confirms or fails.
	StageSent
	// StageDone: confirmed or failed; nothing more to do.
	StageDone
)

func (s Stage) String() string {
	switch s {
	case StageBuild:
		return "build"
	case StageSigned:
		return "signed"
	case StageSent:
		return "sent"
	case StageDone:
		return "done"
	}
	return fmt.Sprintf("stage(%d)", int(s))
}

// Next says whether the machine may take another step at once.
type Next bool

const (
	Wait     Next = false // look again later (after a block)
	Continue Next = true
)

// Outcome is what following a sent transaction found.
type Outcome int

const (
	// Pending: in no block yet, or not deep enough (it was rebroadcast
	// where the chain needs that): look again later.
	Pending Outcome = iota
	// Mined: deep enough; the use case confirms.
	Mined
	// Failed: in a block but failed; it moved nothing.
	Failed
	// Dropped: it can never confirm and moved nothing: build again.
	Dropped
)

// Steps are one use case's transitions on one chain: the chain-specific
// part of the step machine. Drive asks Stage before every step, so an
// implementation reads its stage from where it records it.
type Steps interface {
	Stage(ctx context.Context) (Stage, error)
	// Build builds, signs and records the transaction (StageBuild →
	// StageSigned, or StageSent where signing and sending are one step),
	// or starts what it waits for and says Wait.
	Build(ctx context.Context) (Next, error)
	// Broadcast sends the recorded transaction (StageSigned → StageSent).
	Broadcast(ctx context.Context) (Next, error)
	// Follow looks at the sent transaction.
	Follow(ctx context.Context) (Outcome, error)
	// Confirm records a Mined transaction (→ StageDone).
	Confirm(ctx context.Context) error
	// Fail records a Failed transaction (→ StageDone).
	Fail(ctx context.Context) error
	// Rebuild records that a Dropped transaction is to be built again (→ StageBuild).
	Rebuild(ctx context.Context) error
}

// Drive takes up to maxSteps steps, until one waits or the transaction is
// done, and returns the stage it stopped at. An error stops it where it
// was (the caller classifies it: retry, or fail the use case); the
// machine itself never retries, so every loop it runs is bounded.
func Drive(ctx context.Context, s Steps, maxSteps int) (Stage, error) {
	var stage Stage
	for step := 0; step < maxSteps; step++ {
		var err error
		if stage, err = s.Stage(ctx); err != nil || stage == StageDone {
			return stage, err
		}
		next := Continue
		switch stage {
		case StageBuild:
			next, err = s.Build(ctx)
		case StageSigned:
			next, err = s.Broadcast(ctx)
		case StageSent:
			var out Outcome
			if out, err = s.Follow(ctx); err != nil {
				break
			}
			switch out {
			case Pending:
				next = Wait
			case Mined:
				err = s.Confirm(ctx)
			case Failed:
				err = s.Fail(ctx)
			case Dropped:
				err = s.Rebuild(ctx)
			default:
				err = fmt.Errorf("chain: step machine: outcome %d", out)
			}
		default:
			return stage, fmt.Errorf("chain: step machine: %s", stage)
		}
		if err != nil || next == Wait {
			return stage, err
		}
	}
	return s.Stage(ctx)
}
