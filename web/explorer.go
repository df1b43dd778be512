package web

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/acceptcryptohere/gateway/domain"
)

// Explorers maps a chain to the address of one of its transactions on a
// block explorer: a URL with {txid} where the transaction id goes, for
// example https://mempool.space/tx/{txid}. A chain without an entry (a
// simulated one, or one the operator left out) shows its transaction ids
// without a link.
type Explorers map[domain.Chain]string

// txidPlaceholder is where a transaction id goes in an explorer URL.
const txidPlaceholder = "{txid}"

// CheckExplorerURL refuses what could not be a link to a transaction: it
// must be an absolute http(s) URL with {txid} once, in its path or query.
func CheckExplorerURL(template string) error {
	if strings.Count(template, txidPlaceholder) != 1 {
		return fmt.Errorf("explorer URL %q must contain %s exactly once", template, txidPlaceholder)
	}
	u, err := url.Parse(strings.Replace(template, txidPlaceholder, "txid", 1))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return fmt.Errorf("explorer URL %q must be an absolute http or https URL", template)
	}
	return nil
}

// TxURL is the explorer link of txid on chain, or "" when the chain has
// none. A txid is hex on every chain we serve; anything else gets no link
// rather than a URL it could reshape.
func (e Explorers) TxURL(chain domain.Chain, txid string) string {
	tmpl := e[chain]
	if tmpl == "" || !isHex(strings.TrimPrefix(txid, "0x")) {
		return ""
	}
	return strings.Replace(tmpl, txidPlaceholder, txid, 1)
}

func isHex(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
