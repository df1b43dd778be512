package main

import (
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/domain"
)

// TestExplorers: PIC_EXPLORER_*_TX links a chain's transactions on the
// checkout when its node is configured, never a simulated chain's; a URL
// without {txid} is refused at start.
func TestExplorers(t *testing.T) {
	t.Setenv("PIC_EXPLORER_BTC_TX", "https://mempool.space/tx/{txid}")
	t.Setenv("PIC_EXPLORER_ETH_TX", "https://etherscan.io/tx/{txid}")
	c, err := parseConfig([]string{"-btc-rpc-host", "127.0.0.1:8334"})
	if err != nil {
		t.Fatal(err)
	}
	e := explorers(c)
	if got := e.TxURL(domain.ChainBitcoin, "ab12"); got != "https://mempool.space/tx/ab12" {
		t.Errorf("bitcoin with a node: %q", got)
	}
	if got := e.TxURL(domain.ChainEthereum, "0xab12"); got != "" {
		t.Errorf("simulated Ethereum got a link: %q", got)
	}
	t.Setenv("PIC_EXPLORER_TRON_TX", "https://tronscan.org/#/transaction/")
	if _, err := parseConfig(nil); err == nil || !strings.Contains(err.Error(), "PIC_EXPLORER_TRON_TX") {
		t.Errorf("an explorer URL without {txid}: %v", err)
	}
}
