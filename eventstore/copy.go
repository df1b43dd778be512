package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
)

// Copy appends every event of from, in global order, to to, keeping ids,
// stream versions, order and recorded times. Consecutive events of one stream go in one
// append. It is safe to run again after an interruption: events already
// copied are recognised by their ids. progress, if set, is called after
// each page with the number of events copied so far.
func Copy(ctx context.Context, from, to Store, progress func(copied int)) (int, error) {
	pos, copied := Start, 0
	for {
		page, err := from.ReadAll(ctx, pos, 1000)
		if err != nil {
			return copied, fmt.Errorf("copy: read: %w", err)
		}
		if len(page) == 0 {
			return copied, nil
		}
		for i := 0; i < len(page); {
			j := i + 1
			for j < len(page) && page[j].Stream == page[i].Stream && page[j].Version == page[j-1].Version+1 {
				j++
			}
			run := page[i:j]
			evs := make([]EventData, len(run))
			for k, r := range run {
				evs[k] = EventData{ID: r.ID, Type: r.Type, Data: r.Data, Metadata: r.Metadata, RecordedAt: r.RecordedAt}
			}
			if _, err := to.Append(ctx, run[0].Stream, ExpectedVersion(run[0].Version-1), evs); err != nil {
				return copied, fmt.Errorf("copy: %s version %d: %w", run[0].Stream, run[0].Version, err)
			}
			copied += len(run)
			i = j
		}
		pos = page[len(page)-1].Position
		if progress != nil {
			progress(copied)
		}
	}
}

// Checksum hashes the whole log in global order: each event's id, stream,
// version, type, data, metadata and recorded time. Two stores holding the same log give
// the same checksum whatever their positions look like.
func Checksum(ctx context.Context, s Store) (sum string, events int, err error) {
	h := sha256.New()
	pos := Start
	for {
		page, err := s.ReadAll(ctx, pos, 1000)
		if err != nil {
			return "", events, err
		}
		if len(page) == 0 {
			return hex.EncodeToString(h.Sum(nil)), events, nil
		}
		for _, e := range page {
			for _, field := range [][]byte{[]byte(e.ID), []byte(e.Stream), []byte(e.Type), e.Data, e.Metadata} {
				writeField(h, field)
			}
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], uint64(e.Version))
			h.Write(v[:])
			// The recorded time too, to the microsecond every store keeps:
			// a copy keeps it (money rule 8).
			binary.BigEndian.PutUint64(v[:], uint64(e.RecordedAt.UnixMicro()))
			h.Write(v[:])
			events++
		}
		pos = page[len(page)-1].Position
	}
}

// writeField length-prefixes a field so that field boundaries are hashed too.
func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}
