package btc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
)

func TestDecodeHexBlock(t *testing.T) {
	var buf bytes.Buffer
	genesis := chaincfg.MainNetParams.GenesisBlock
	if err := genesis.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	good := `"` + hex.EncodeToString(buf.Bytes()) + `"`
	blk, err := decodeHexBlock(json.RawMessage(" " + good + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if blk.BlockHash() != genesis.BlockHash() || len(blk.Transactions) != 1 {
		t.Fatalf("decoded %s with %d transactions, want the genesis block", blk.BlockHash(), len(blk.Transactions))
	}
	for name, res := range map[string]string{
		"null":      `null`,
		"object":    `{"hash":"00"}`,
		"bad hex":   `"zz` + good[3:],
		"odd hex":   good[:len(good)-2] + `"`,
		"truncated": good[:len(good)/2] + `"`,
		"empty":     `""`,
	} {
		if _, err := decodeHexBlock(json.RawMessage(res)); err == nil || !strings.Contains(err.Error(), "getblock") {
			t.Errorf("%s: err = %v, want a getblock error", name, err)
		}
	}
}
