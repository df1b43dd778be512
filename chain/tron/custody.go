package tron

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"

	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/chain/hd"
)

// ReadTransfer reads a transaction's raw_data for a separate signer
// (custody.TronReader): one TRX transfer, or one call of transfer(to,
// amount) on a contract with no TRX or token attached; no memo, no other
// permission, and the canonical encoding (what is signed is what is read).
func ReadTransfer(raw []byte) (custody.TronTransfer, error) {
	r, err := UnmarshalRawTx(raw)
	if err != nil {
		return custody.TronTransfer{}, err
	}
	if !bytes.Equal(r.Marshal(), raw) {
		return custody.TronTransfer{}, errors.New("not canonically encoded")
	}
	if len(r.Contracts) != 1 || len(r.Data) != 0 || r.Contracts[0].PermissionID != 0 {
		return custody.TronTransfer{}, errors.New("want one contract, no memo, the owner's permission")
	}
	c := r.Contracts[0]
	switch {
	case c.Type == TransferContractType && c.TypeURL == transferTypeURL:
		t, err := UnmarshalTransfer(c.Value)
		if err != nil {
			return custody.TronTransfer{}, err
		}
		return custody.TronTransfer{Owner: EncodeAddress(t.Owner), To: EncodeAddress(t.To), Amount: t.Amount}, nil
	case c.Type == TriggerSmartContractType && c.TypeURL == triggerTypeURL:
		t, err := UnmarshalTrigger(c.Value)
		if err != nil {
			return custody.TronTransfer{}, err
		}
		d := t.Data
		if t.CallValue != 0 || t.CallTokenValue != 0 || t.TokenID != 0 || len(d) != 4+64 || !bytes.Equal(d[:4], transferSelector) ||
			!bytes.Equal(d[4:16], make([]byte, 12)) {
			return custody.TronTransfer{}, errors.New("the call is not a TRC-20 transfer(address,uint256) without TRX")
		}
		amount := new(big.Int).SetBytes(d[36:68])
		if !amount.IsInt64() {
			return custody.TronTransfer{}, fmt.Errorf("amount %s out of range", amount)
		}
		to := append([]byte{hd.TronVersion}, d[16:36]...)
		return custody.TronTransfer{Owner: EncodeAddress(t.Owner), To: EncodeAddress(to), Contract: EncodeAddress(t.Contract), Amount: amount.Int64()}, nil
	}
	return custody.TronTransfer{}, fmt.Errorf("contract type %d %q", c.Type, c.TypeURL)
}

var _ custody.TronReader = ReadTransfer
