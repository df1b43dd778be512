package commands

import (
	"crypto/rand"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
)

// NewIDGenerator returns an id function for Deps.NewID: a domain.FormatID id
// with now's milliseconds and 80 random bits, e.g. inv_01jfz3k8m2x4v7q9c0b5n6t8w1r3.
// A command id made by it (prefix "cmd_") carries its time, so the ids that
// the command creates depend on the command id alone (domain.DerivedID).
func NewIDGenerator(now func() time.Time) func(prefix string) string {
	return func(prefix string) string {
		var r [10]byte
		if _, err := rand.Read(r[:]); err != nil {
			panic("commands: crypto/rand: " + err.Error()) // never fails on supported platforms
		}
		return domain.FormatID(prefix, uint64(now().UnixMilli()), r)
	}
}

// The stream names and EventID live in domain, so that readers need not
// import commands; these names stay for the callers that already use them.
func MerchantStream(id string) string             { return domain.MerchantStream(id) }
func InvoiceStream(id string) string              { return domain.InvoiceStream(id) }
func PayoutStream(id string) string               { return domain.PayoutStream(id) }
func FundsStream(merchantID, asset string) string { return domain.FundsStream(merchantID, asset) }
func EventID(commandID, stream string, index int) string {
	return domain.EventID(commandID, stream, index)
}

func addressStream(asset, address string) string {
	return "address-" + asset + "-" + address
}
func indexStream(chain domain.Chain) string { return "addresses-" + string(chain) }
