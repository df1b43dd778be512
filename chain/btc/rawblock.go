package btc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"
)

// hexBlocks is the RPC client with GetBlock decoding getblock's hex
// straight from the JSON string. rpcclient's own GetBlock parses the
// multi-megabyte string twice (the response, then the result into a Go
// string) before decoding it; hex digits need no JSON unescaping, so the
// raw result between its quotes is the hex.
type hexBlocks struct{ *rpcclient.Client }

func (c hexBlocks) GetBlock(hash *chainhash.Hash) (*wire.MsgBlock, error) {
	param, err := json.Marshal(hash.String())
	if err != nil {
		return nil, err
	}
	res, err := c.RawRequest("getblock", []json.RawMessage{param, json.RawMessage("0")})
	if err != nil {
		return nil, err
	}
	return decodeHexBlock(res)
}

// decodeHexBlock decodes a JSON string of a serialized block in hex.
func decodeHexBlock(res json.RawMessage) (*wire.MsgBlock, error) {
	res = bytes.TrimSpace(res)
	if len(res) < 2 || res[0] != '"' || res[len(res)-1] != '"' {
		return nil, fmt.Errorf("getblock: result is not a hex string: %.40q", res)
	}
	raw := make([]byte, hex.DecodedLen(len(res)-2))
	if _, err := hex.Decode(raw, res[1:len(res)-1]); err != nil {
		return nil, fmt.Errorf("getblock: %w", err)
	}
	var blk wire.MsgBlock
	if err := blk.Deserialize(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("getblock: %w", err)
	}
	return &blk, nil
}
