package eth

import (
	"encoding/hex"
	"math/big"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain"
)

// TransferTopic is topic 0 of an ERC-20 Transfer(address,address,uint256) log.
var TransferTopic = crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))

// watchSet holds our receiving addresses (compared as 20 bytes, so the case
// of the stored hex does not matter) and answers with the form stored on
// invoices: checksummed (EIP-55, as picd issues them) or lower-case hex
// are rendered again from the bytes, any other form is kept as text.
type watchSet = *chain.WatchSet[common.Address]

func newWatchSet() watchSet {
	return chain.NewWatchSet(func(a common.Address) string { return a.Hex() },
		func(a common.Address) string { return "0x" + hex.EncodeToString(a[:]) })
}

// token is an ERC-20 asset we watch.
type token struct {
	asset    string
	decimals int32
}

// found is a transfer to one of our addresses, before any receipt check.
type found struct {
	asset     string
	decimals  int32
	address   string // as stored on invoices
	txHash    common.Hash
	depositID string
	units     *big.Int
	height    int64
	blockHash common.Hash
	native    bool
}

// matchNative returns the plain value transfers of a block to watched
// addresses. Value moved by contracts (internal transactions) does not show
// here: it would need tracing, and is out of scope.
func matchNative(b *types.Block, watched watchSet, asset string, decimals int32) []found {
	var out []found
	for _, tx := range b.Transactions() {
		to := tx.To()
		if to == nil {
			continue
		}
		stored, ok := watched.Lookup(*to)
		if !ok || tx.Value().Sign() <= 0 {
			continue
		}
		h := tx.Hash()
		out = append(out, found{asset: asset, decimals: decimals, address: stored, txHash: h, depositID: h.Hex(),
			units: new(big.Int).Set(tx.Value()), height: b.Number().Int64(), blockHash: b.Hash(), native: true})
	}
	return out
}

// matchLogs returns the ERC-20 transfers among logs to watched addresses.
// Logs of other contracts, other events, ERC-721 transfers (a fourth
// topic) and removed logs are skipped.
func matchLogs(logs []types.Log, watched watchSet, tokens map[common.Address]token) []found {
	var out []found
	for _, l := range logs {
		if l.Removed || len(l.Topics) != 3 || l.Topics[0] != TransferTopic || len(l.Data) != 32 {
			continue
		}
		tk, ok := tokens[l.Address]
		if !ok {
			continue
		}
		stored, ok := watched.Lookup(common.BytesToAddress(l.Topics[2].Bytes()[12:]))
		if !ok {
			continue
		}
		units := new(big.Int).SetBytes(l.Data)
		if units.Sign() <= 0 {
			continue
		}
		out = append(out, found{asset: tk.asset, decimals: tk.decimals, address: stored, txHash: l.TxHash,
			depositID: l.TxHash.Hex() + ":" + strconv.FormatUint(uint64(l.Index), 10), units: units, height: int64(l.BlockNumber), blockHash: l.BlockHash})
	}
	return out
}
