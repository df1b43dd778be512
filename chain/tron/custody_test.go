package tron

import (
	"bytes"
	"strings"
	"testing"
)

// ReadTransfer gives the signer what a transaction moves, and refuses
// what it cannot read fully.
func TestReadTransfer(t *testing.T) {
	owner := append([]byte{0x41}, bytes.Repeat([]byte{1}, 20)...)
	to := append([]byte{0x41}, bytes.Repeat([]byte{2}, 20)...)
	contract := append([]byte{0x41}, bytes.Repeat([]byte{3}, 20)...)
	base := RawTx{RefBlockBytes: []byte{0, 1}, RefBlockHash: make([]byte, 8), Expiration: 1}
	trx := base
	trx.Contracts = []Contract{{Type: TransferContractType, TypeURL: transferTypeURL, Value: TransferContract{Owner: owner, To: to, Amount: 7}.Marshal()}}
	got, err := ReadTransfer(trx.Marshal())
	if err != nil || got.Owner != EncodeAddress(owner) || got.To != EncodeAddress(to) || got.Amount != 7 || got.Contract != "" {
		t.Fatalf("TRX transfer: %+v %v", got, err)
	}
	call := func(value int64, data []byte) RawTx {
		r := base
		r.FeeLimit = 10
		r.Contracts = []Contract{{Type: TriggerSmartContractType, TypeURL: triggerTypeURL,
			Value: TriggerSmartContract{Owner: owner, Contract: contract, CallValue: value, Data: data}.Marshal()}}
		return r
	}
	data := append(append([]byte{}, transferSelector...), transferParameter(to, 25_000_000)...)
	got, err = ReadTransfer(call(0, data).Marshal())
	if err != nil || got.To != EncodeAddress(to) || got.Amount != 25_000_000 || got.Contract != EncodeAddress(contract) {
		t.Fatalf("TRC-20 transfer: %+v %v", got, err)
	}
	memo := trx
	memo.Data = []byte("hi")
	approve := append([]byte{0x09, 0x5e, 0xa7, 0xb3}, transferParameter(to, 1)...)
	for name, raw := range map[string][]byte{
		"a memo":            memo.Marshal(),
		"TRX with the call": call(1, data).Marshal(),
		"approve()":         call(0, approve).Marshal(),
		"not protobuf":      []byte{0xff, 0xff},
	} {
		if _, err := ReadTransfer(raw); err == nil {
			t.Errorf("%s: read", name)
		} else if strings.TrimSpace(err.Error()) == "" {
			t.Errorf("%s: an empty reason", name)
		}
	}
}
