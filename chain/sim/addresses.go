// Package sim is the in-process chain simulator used when no node is
// configured. Its addresses are deterministic stand-ins derived from a
// seed; they are not spendable on any real network.
package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/acceptcryptohere/gateway/domain"
)

// Deriver returns simulated addresses for an HD index: distinct per chain,
// seed and index, shaped like the chain's addresses so pages and QR codes
// look right, and marked "sim" where the format allows.
func Deriver(seed []byte) func(chain domain.Chain, index int64) (string, error) {
	return func(chain domain.Chain, index int64) (string, error) {
		if index < 0 {
			return "", fmt.Errorf("sim: negative index %d", index)
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(index))
		h := sha256.New()
		h.Write(seed)
		h.Write([]byte(chain))
		h.Write(buf[:])
		body := hex.EncodeToString(h.Sum(nil)[:20])
		switch chain {
		case domain.ChainBitcoin:
			return "simbtc1q" + body, nil
		case domain.ChainEthereum:
			return "0x" + body, nil
		case domain.ChainTron:
			return "Tsim" + body, nil
		}
		return "", fmt.Errorf("sim: unknown chain %q", chain)
	}
}
