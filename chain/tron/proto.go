package tron

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The protobuf messages of a TRON transaction, hand-written with protowire
// from java-tron's protocol definitions (protocol/src/main/protos/core/
// Tron.proto: Transaction, Transaction.raw, Transaction.Contract;
// core/contract/balance_contract.proto: TransferContract;
// core/contract/smart_contract.proto: TriggerSmartContract;
// google/protobuf/any.proto: Any). Only the fields a payment uses are
// known; decoding refuses any other field, so that nothing we do not
// understand is ever signed.
//
// Field numbers:
//
//	Transaction          raw_data 1, signature 2 (repeated), ret 5 (repeated)
//	Transaction.raw      ref_block_bytes 1, ref_block_num 3, ref_block_hash 4,
//	                     expiration 8, data 10, contract 11 (repeated),
//	                     timestamp 14, fee_limit 18
//	Transaction.Contract type 1, parameter 2 (Any), Permission_id 5
//	Any                  type_url 1, value 2
//	TransferContract     owner_address 1, to_address 2, amount 3
//	TriggerSmartContract owner_address 1, contract_address 2, call_value 3,
//	                     data 4, call_token_value 5, token_id 6
//
// Encoding follows protobuf's canonical form as java-tron writes it: fields
// in number order, proto3 zero values omitted.

// ContractType is Transaction.Contract.ContractType.
type ContractType int32

const (
	TransferContractType     ContractType = 1
	TriggerSmartContractType ContractType = 31
)

// Type URLs of the contracts' Any parameter.
const (
	transferTypeURL = "type.googleapis.com/protocol.TransferContract"
	triggerTypeURL  = "type.googleapis.com/protocol.TriggerSmartContract"
)

// errProto: bytes that are not a transaction we understand.
var errProto = errors.New("tron: unexpected protobuf")

// RawTx is Transaction.raw.
type RawTx struct {
	RefBlockBytes []byte
	RefBlockNum   int64
	RefBlockHash  []byte
	Expiration    int64 // ms
	Data          []byte
	Contracts     []Contract
	Timestamp     int64 // ms
	FeeLimit      int64 // sun
}

// Contract is Transaction.Contract with its Any parameter.
type Contract struct {
	Type         ContractType
	TypeURL      string
	Value        []byte // the encoded TransferContract or TriggerSmartContract
	PermissionID int32
}

// TransferContract moves TRX (sun) between accounts (21-byte addresses).
type TransferContract struct {
	Owner, To []byte
	Amount    int64
}

// TriggerSmartContract calls a contract (21-byte addresses).
type TriggerSmartContract struct {
	Owner, Contract []byte
	CallValue       int64
	Data            []byte
	CallTokenValue  int64
	TokenID         int64
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendInt(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// Marshal encodes a TransferContract.
func (c TransferContract) Marshal() []byte {
	var b []byte
	b = appendBytes(b, 1, c.Owner)
	b = appendBytes(b, 2, c.To)
	return appendInt(b, 3, c.Amount)
}

// Marshal encodes a TriggerSmartContract.
func (c TriggerSmartContract) Marshal() []byte {
	var b []byte
	b = appendBytes(b, 1, c.Owner)
	b = appendBytes(b, 2, c.Contract)
	b = appendInt(b, 3, c.CallValue)
	b = appendBytes(b, 4, c.Data)
	b = appendInt(b, 5, c.CallTokenValue)
	return appendInt(b, 6, c.TokenID)
}

// Marshal encodes a Transaction.raw: the bytes the txID hashes.
func (r RawTx) Marshal() []byte {
	var b []byte
	b = appendBytes(b, 1, r.RefBlockBytes)
	b = appendInt(b, 3, r.RefBlockNum)
	b = appendBytes(b, 4, r.RefBlockHash)
	b = appendInt(b, 8, r.Expiration)
	b = appendBytes(b, 10, r.Data)
	for _, c := range r.Contracts {
		var any []byte
		any = appendBytes(any, 1, []byte(c.TypeURL))
		any = appendBytes(any, 2, c.Value)
		var cb []byte
		cb = appendInt(cb, 1, int64(c.Type))
		cb = protowire.AppendTag(cb, 2, protowire.BytesType) // parameter is always present
		cb = protowire.AppendBytes(cb, any)
		cb = appendInt(cb, 5, int64(c.PermissionID))
		b = protowire.AppendTag(b, 11, protowire.BytesType)
		b = protowire.AppendBytes(b, cb)
	}
	b = appendInt(b, 14, r.Timestamp)
	return appendInt(b, 18, r.FeeLimit)
}

// TxID is the transaction id: sha256 of the raw_data bytes.
func TxID(raw []byte) string {
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:])
}

// MarshalTransaction encodes a signed Transaction (no ret: a node fills
// that in); its hex is what /wallet/broadcasthex takes.
func MarshalTransaction(raw []byte, signatures [][]byte) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, raw)
	for _, s := range signatures {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, s)
	}
	return b
}

// field is one decoded field.
type field struct {
	num   protowire.Number
	typ   protowire.Type
	bytes []byte
	v     uint64
}

// fields splits a message into its fields.
func fields(b []byte) ([]field, error) {
	var out []field
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: %v", errProto, protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			f.bytes, n = protowire.ConsumeBytes(b)
		default:
			return nil, fmt.Errorf("%w: field %d has wire type %d", errProto, num, typ)
		}
		if n < 0 {
			return nil, fmt.Errorf("%w: %v", errProto, protowire.ParseError(n))
		}
		b = b[n:]
		out = append(out, f)
	}
	return out, nil
}

func wrongField(msg string, f field) error {
	return fmt.Errorf("%w: %s field %d (wire type %d)", errProto, msg, f.num, f.typ)
}

// UnmarshalRawTx decodes Transaction.raw strictly.
func UnmarshalRawTx(b []byte) (RawTx, error) {
	fs, err := fields(b)
	if err != nil {
		return RawTx{}, err
	}
	var r RawTx
	for _, f := range fs {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			r.RefBlockBytes = f.bytes
		case f.num == 3 && f.typ == protowire.VarintType:
			r.RefBlockNum = int64(f.v)
		case f.num == 4 && f.typ == protowire.BytesType:
			r.RefBlockHash = f.bytes
		case f.num == 8 && f.typ == protowire.VarintType:
			r.Expiration = int64(f.v)
		case f.num == 10 && f.typ == protowire.BytesType:
			r.Data = f.bytes
		case f.num == 11 && f.typ == protowire.BytesType:
			c, err := unmarshalContract(f.bytes)
			if err != nil {
				return RawTx{}, err
			}
			r.Contracts = append(r.Contracts, c)
		case f.num == 14 && f.typ == protowire.VarintType:
			r.Timestamp = int64(f.v)
		case f.num == 18 && f.typ == protowire.VarintType:
			r.FeeLimit = int64(f.v)
		default:
			return RawTx{}, wrongField("Transaction.raw", f)
		}
	}
	return r, nil
}

func unmarshalContract(b []byte) (Contract, error) {
	fs, err := fields(b)
	if err != nil {
		return Contract{}, err
	}
	var c Contract
	for _, f := range fs {
		switch {
		case f.num == 1 && f.typ == protowire.VarintType:
			c.Type = ContractType(int32(f.v))
		case f.num == 2 && f.typ == protowire.BytesType:
			afs, err := fields(f.bytes)
			if err != nil {
				return Contract{}, err
			}
			for _, a := range afs {
				switch {
				case a.num == 1 && a.typ == protowire.BytesType:
					c.TypeURL = string(a.bytes)
				case a.num == 2 && a.typ == protowire.BytesType:
					c.Value = a.bytes
				default:
					return Contract{}, wrongField("Any", a)
				}
			}
		case f.num == 5 && f.typ == protowire.VarintType:
			c.PermissionID = int32(f.v)
		default:
			return Contract{}, wrongField("Transaction.Contract", f)
		}
	}
	return c, nil
}

// UnmarshalTransfer decodes a TransferContract strictly.
func UnmarshalTransfer(b []byte) (TransferContract, error) {
	fs, err := fields(b)
	if err != nil {
		return TransferContract{}, err
	}
	var c TransferContract
	for _, f := range fs {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			c.Owner = f.bytes
		case f.num == 2 && f.typ == protowire.BytesType:
			c.To = f.bytes
		case f.num == 3 && f.typ == protowire.VarintType:
			c.Amount = int64(f.v)
		default:
			return TransferContract{}, wrongField("TransferContract", f)
		}
	}
	return c, nil
}

// UnmarshalTrigger decodes a TriggerSmartContract strictly.
func UnmarshalTrigger(b []byte) (TriggerSmartContract, error) {
	fs, err := fields(b)
	if err != nil {
		return TriggerSmartContract{}, err
	}
	var c TriggerSmartContract
	for _, f := range fs {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			c.Owner = f.bytes
		case f.num == 2 && f.typ == protowire.BytesType:
			c.Contract = f.bytes
		case f.num == 3 && f.typ == protowire.VarintType:
			c.CallValue = int64(f.v)
		case f.num == 4 && f.typ == protowire.BytesType:
			c.Data = f.bytes
		case f.num == 5 && f.typ == protowire.VarintType:
			c.CallTokenValue = int64(f.v)
		case f.num == 6 && f.typ == protowire.VarintType:
			c.TokenID = int64(f.v)
		default:
			return TriggerSmartContract{}, wrongField("TriggerSmartContract", f)
		}
	}
	return c, nil
}

// UnmarshalTransaction splits a signed Transaction into its raw_data bytes
// (as they are: the txID hashes them) and signatures; ret is skipped.
func UnmarshalTransaction(b []byte) (raw []byte, signatures [][]byte, err error) {
	fs, err := fields(b)
	if err != nil {
		return nil, nil, err
	}
	seenRaw := false
	for _, f := range fs {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType && !seenRaw:
			raw, seenRaw = f.bytes, true
		case f.num == 2 && f.typ == protowire.BytesType:
			signatures = append(signatures, f.bytes)
		case f.num == 5 && f.typ == protowire.BytesType:
		default:
			return nil, nil, wrongField("Transaction", f)
		}
	}
	if !seenRaw {
		return nil, nil, fmt.Errorf("%w: transaction without raw_data", errProto)
	}
	return raw, signatures, nil
}
