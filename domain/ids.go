package domain

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Stream names: one stream per aggregate. Readers outside commands (chain,
// webhooks, tools) find an aggregate's events by these names.
func MerchantStream(id string) string { return "merchant-" + id }
func InvoiceStream(id string) string  { return "invoice-" + id }

// PayoutStream holds one payout's life after its request.
func PayoutStream(id string) string { return "payout-" + id }

// FundsStream serialises a merchant's debits of one asset (payout and
// refund requests, conversions out).
func FundsStream(merchantID, asset string) string { return "payouts-" + merchantID + "-" + asset }

// crockford is Crockford's base32 alphabet in lower case: ids read well and
// sort in time order as strings.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// FormatID builds a public id: prefix, 10 characters of the milliseconds
// since the epoch, then 16 characters (80 bits) of tail, e.g.
// inv_01jfz3k8m2x4v7q9c0b5n6t8w1r3. Ids of one prefix sort by time as strings.
func FormatID(prefix string, ms uint64, tail [10]byte) string {
	var b [26]byte
	for i := 9; i >= 0; i-- {
		b[i] = crockford[ms&31]
		ms >>= 5
	}
	hi, lo := binary.BigEndian.Uint16(tail[:2]), binary.BigEndian.Uint64(tail[2:])
	for i := 25; i >= 10; i-- {
		b[i] = crockford[lo&31]
		lo = lo>>5 | uint64(hi&31)<<59
		hi >>= 5
	}
	return prefix + string(b[:])
}

// IDTime reads the milliseconds of the FormatID id a name ends with (as a
// stream name "invoice-inv_01jf…" does).
func IDTime(name string) (uint64, bool) {
	i := strings.LastIndexByte(name, '_')
	if i < 0 || len(name)-i-1 != 26 {
		return 0, false
	}
	var ms uint64
	for k, c := range name[i+1:] {
		v := strings.IndexRune(crockford, c)
		if v < 0 {
			return 0, false
		}
		if k < 10 {
			ms = ms<<5 | uint64(v)
		}
	}
	return ms, ms < 1<<48
}

// DerivedID is the id of the aggregate a command creates, a function of the
// command id (and of scope, where one command id may create in several
// places, as the funds streams of two assets): a retried create names the
// same stream, so the store recognises it. The time part is the command
// id's own when the command id is a FormatID id, alone or before a "/"
// naming one of its parts ("idem_…/payout"): then the id depends on the
// command id alone. Otherwise it is at's millisecond.
func DerivedID(prefix, commandID, scope string, at time.Time) string {
	base, _, _ := strings.Cut(commandID, "/")
	ms, ok := IDTime(base)
	if !ok {
		ms = uint64(at.UnixMilli())
	}
	h := sha256.Sum256([]byte("pic-id\x00" + prefix + "\x00" + commandID + "\x00" + scope))
	var tail [10]byte
	copy(tail[:], h[:])
	return FormatID(prefix, ms, tail)
}

// EventID derives an event id (UUID-shaped, as EventStoreDB wants) from the
// command, the stream and the event's index among the command's events, so
// that retrying the same command is recognised by the store instead of
// duplicated.
//
// In a stream named after a time-ordered id (invoice-inv_01jfz3k8m2...) the
// id begins with that id's milliseconds, UUIDv7-style: the stores' unique
// index on event ids then grows at its end instead of at a random page per
// event.
func EventID(commandID, stream string, index int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d", commandID, stream, index)))
	h[6] = h[6]&0x0f | 0x50 // version 5 style: name-based
	if ms, ok := IDTime(stream); ok {
		h[0], h[1], h[2], h[3], h[4], h[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
		h[6] = h[6]&0x0f | 0x70 // version 7: time-ordered
	}
	h[8] = h[8]&0x3f | 0x80
	s := hex.EncodeToString(h[:16])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}
