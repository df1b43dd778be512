package eventstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"time"
)

// The hash chain makes the log tamper-evident: each stored event carries
// the SHA-256 of the previous event's hash and its own stored fields, so
// changing, removing or inserting any past event changes every hash after
// it. A store computes the chain in its writer, in the order it assigns
// chain sequence numbers (1, 2, ...; on SQLite the global position, on
// Postgres a column of its own: concurrent transactions may take global
// positions in another order than they commit). A statement or an operator
// who notes the head's hash can later prove the log up to it unchanged.

// HashSize is the length of a chain hash.
const HashSize = sha256.Size

// Genesis is the "previous hash" of a store's first event.
var Genesis = make([]byte, HashSize)

// ChainLink is an event with its place in the chain and its stored hash
// (nil where the store has none, such as a row written by an older build).
type ChainLink struct {
	Seq   uint64
	Event RecordedEvent
	Hash  []byte
}

// Chained is a store that keeps the hash chain.
type Chained interface {
	// ReadChain returns up to max links with Seq > after, in Seq order.
	ReadChain(ctx context.Context, after uint64, max int) ([]ChainLink, error)
	// ChainHead returns the last link's Seq and Hash (0 and Genesis for an
	// empty store).
	ChainHead(ctx context.Context) (uint64, []byte, error)
}

// Chainer computes hashes one after the other; one per writer, reused.
type Chainer struct {
	h   hash.Hash
	buf []byte
}

// NewChainer returns a Chainer.
func NewChainer() *Chainer { return &Chainer{h: sha256.New()} }

// Next returns the hash of the event at seq after prev. recordedAt is the
// stored time, to the microsecond. Every field is length-prefixed, so no
// two different events encode alike. dst, when large enough, receives the
// hash (no allocation).
func (c *Chainer) Next(dst, prev []byte, seq uint64, id, stream string, version int64, typ string, data, metadata []byte, recordedAt time.Time) []byte {
	b := c.buf[:0]
	b = append(b, prev...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = appendField(b, []byte(id))
	b = appendField(b, []byte(stream))
	b = binary.BigEndian.AppendUint64(b, uint64(version))
	b = appendField(b, []byte(typ))
	b = appendField(b, data)
	b = appendField(b, metadata)
	b = binary.BigEndian.AppendUint64(b, uint64(recordedAt.UnixMicro()))
	c.buf = b
	c.h.Reset()
	c.h.Write(b)
	return c.h.Sum(dst[:0])
}

func appendField(b, f []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
	return append(b, f...)
}

// LinkHash is the hash a link must have after prev.
func (c *Chainer) LinkHash(prev []byte, l ChainLink) []byte {
	e := l.Event
	return c.Next(nil, prev, l.Seq, e.ID, e.Stream, e.Version, e.Type, e.Data, e.Metadata, e.RecordedAt)
}

// ChainBreak is where a recomputed chain first differs from the stored one.
type ChainBreak struct {
	Seq      uint64
	Position Position
	EventID  string
	Stream   string
	Reason   string
}

func (b ChainBreak) String() string {
	return fmt.Sprintf("chain broken at seq %d (position %s, event %s in %s): %s", b.Seq, b.Position, b.EventID, b.Stream, b.Reason)
}

// ChainReport is the result of VerifyChain.
type ChainReport struct {
	Events uint64 // links checked
	Head   uint64 // last Seq checked
	// HeadHash is the recomputed hash at Head (hex).
	HeadHash string
	// Break is the first link whose stored hash is not the recomputed one,
	// or whose Seq is not the next; nil when the chain holds.
	Break   *ChainBreak
	Elapsed time.Duration
	// AtHash is the recomputed hash at the seq VerifyChainAt was asked
	// about (hex; empty when the chain broke before it or is shorter).
	AtHash string
}

// ErrNoChain: the store keeps no hash chain (EventStoreDB, see docs).
var ErrNoChain = errors.New("eventstore: this store keeps no hash chain")

// VerifyChain recomputes the whole chain of s from Genesis and compares
// every stored hash; it stops at the first break. progress, if not nil, is
// called after each page with the links checked so far. now measures the
// elapsed time.
func VerifyChain(ctx context.Context, s Store, now func() time.Time, progress func(done uint64)) (ChainReport, error) {
	return VerifyChainAt(ctx, s, now, progress, 0)
}

// VerifyChainAt is VerifyChain that also reports the recomputed hash at
// seq at (AtHash): the hash a statement carried for the log it read.
func VerifyChainAt(ctx context.Context, s Store, now func() time.Time, progress func(done uint64), at uint64) (ChainReport, error) {
	c, ok := s.(Chained)
	if !ok {
		return ChainReport{}, ErrNoChain
	}
	start := now()
	var rep ChainReport
	ch := NewChainer()
	prev := append([]byte(nil), Genesis...)
	next := make([]byte, 0, HashSize)
	const page = 4096
	for {
		links, err := c.ReadChain(ctx, rep.Head, page)
		if err != nil {
			return rep, err
		}
		for _, l := range links {
			br := func(reason string) {
				rep.Break = &ChainBreak{Seq: l.Seq, Position: l.Event.Position, EventID: l.Event.ID, Stream: l.Event.Stream, Reason: reason}
			}
			// A removed event needs no check of its own: the next event's
			// stored hash chained it, and no longer recomputes.
			switch {
			case l.Seq <= rep.Head:
				br(fmt.Sprintf("sequence %d after %d", l.Seq, rep.Head))
			case l.Hash == nil:
				br("no stored hash")
			default:
				next = ch.Next(next, prev, l.Seq, l.Event.ID, l.Event.Stream, l.Event.Version, l.Event.Type, l.Event.Data, l.Event.Metadata, l.Event.RecordedAt)
				if !bytes.Equal(next, l.Hash) {
					br("stored hash " + hex.EncodeToString(l.Hash) + " is not the recomputed " + hex.EncodeToString(next) + " (this event or the one before was altered)")
				}
			}
			if rep.Break != nil {
				rep.Elapsed = now().Sub(start)
				return rep, nil
			}
			prev, next = next, prev
			rep.Head = l.Seq
			rep.Events++
			if at != 0 && l.Seq == at {
				rep.AtHash = hex.EncodeToString(prev)
			}
		}
		if progress != nil {
			progress(rep.Events)
		}
		if len(links) < page {
			break
		}
	}
	rep.HeadHash = hex.EncodeToString(prev)
	// Rows outside the chain (written by a build without it) are not read
	// above; counting the log finds them.
	if counter, ok := s.(interface {
		CountAfter(context.Context, Position) (int64, error)
	}); ok {
		n, err := counter.CountAfter(ctx, Start)
		if err != nil {
			return rep, err
		}
		if uint64(n) > rep.Events {
			rep.Break = &ChainBreak{Seq: rep.Head + 1, Reason: fmt.Sprintf("%d stored events are outside the chain (appended without a hash: run picd migrate)", uint64(n)-rep.Events)}
		}
	}
	rep.Elapsed = now().Sub(start)
	return rep, nil
}
