package commands

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// crockford is Crockford's base32 alphabet in lower case: ids read well and
// sort in time order as strings.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// NewIDGenerator returns an id function for Deps.NewID: prefix, 10
// characters of milliseconds since the epoch, then 16 random characters
// (80 bits), e.g. inv_01jfz3k8m2x4v7q9c0b5n6t8w1r3.
func NewIDGenerator(now func() time.Time) func(prefix string) string {
	return func(prefix string) string {
		var b [26]byte
		ms := uint64(now().UnixMilli())
		for i := 9; i >= 0; i-- {
			b[i] = crockford[ms&31]
			ms >>= 5
		}
		var r [10]byte
		if _, err := rand.Read(r[:]); err != nil {
			panic("commands: crypto/rand: " + err.Error()) // never fails on supported platforms
		}
		hi, lo := binary.BigEndian.Uint16(r[:2]), binary.BigEndian.Uint64(r[2:])
		for i := 25; i >= 10; i-- {
			b[i] = crockford[lo&31]
			lo = lo>>5 | uint64(hi&31)<<59
			hi >>= 5
		}
		return prefix + string(b[:])
	}
}
