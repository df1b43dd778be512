package custody

import (
	"bytes"
	"fmt"
	"math/big"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// UnsignedEthereum encodes a transaction to sign (Request.Unsigned).
func UnsignedEthereum(tx *types.DynamicFeeTx) ([]byte, error) {
	return types.NewTx(tx).MarshalBinary()
}

// decodeEthereum reads Request.Unsigned: a type-2 (EIP-1559) transaction
// with a chain id, the only kind the sender builds.
func decodeEthereum(b []byte) (*types.Transaction, error) {
	var tx types.Transaction
	if err := tx.UnmarshalBinary(b); err != nil {
		return nil, refused("unsigned Ethereum transaction: %v", err)
	}
	if tx.Type() != types.DynamicFeeTxType || tx.ChainId() == nil || tx.ChainId().Sign() <= 0 {
		return nil, refused("unsigned Ethereum transaction: want type 2 with a chain id, got type %d", tx.Type())
	}
	return &tx, nil
}

func signEthereum(k *btcec.PrivateKey, tx *types.Transaction) ([]byte, error) {
	key, err := crypto.ToECDSA(k.Serialize())
	if err != nil {
		return nil, err
	}
	signed, err := types.SignTx(tx, types.LatestSignerForChainID(tx.ChainId()), key)
	if err != nil {
		return nil, fmt.Errorf("custody: sign: %w", err)
	}
	return signed.MarshalBinary()
}

// transferSelector is the ABI selector of transfer(address,uint256).
var transferSelector = []byte{0xa9, 0x05, 0x9c, 0xbb}

// ethereumTransfer is what a transaction moves: to whom, how much, and
// through which token contract (nil for ETH itself).
type ethereumTransfer struct {
	to       common.Address
	amount   *big.Int
	contract *common.Address
}

// transferOf reads a plain ETH transfer (no data) or an ERC-20
// transfer(to, amount) with no ETH attached; anything else is refused:
// the signer signs nothing it cannot read.
func transferOf(tx *types.Transaction) (ethereumTransfer, error) {
	if tx.To() == nil {
		return ethereumTransfer{}, refused("a contract creation is never signed")
	}
	data := tx.Data()
	if len(data) == 0 {
		return ethereumTransfer{to: *tx.To(), amount: tx.Value()}, nil
	}
	if len(data) != 4+64 || !bytes.Equal(data[:4], transferSelector) || tx.Value().Sign() != 0 ||
		!bytes.Equal(data[4:16], make([]byte, 12)) {
		return ethereumTransfer{}, refused("the transaction's call is not a token transfer(address,uint256) without ETH")
	}
	contract := *tx.To()
	return ethereumTransfer{to: common.BytesToAddress(data[16:36]), amount: new(big.Int).SetBytes(data[36:68]), contract: &contract}, nil
}
