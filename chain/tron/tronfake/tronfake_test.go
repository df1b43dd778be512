package tronfake_test

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
)

// The fake refuses what does not check out byte for byte: a signature by
// another key than the owner's, and bytes that do not re-encode the same.
func TestAcceptChecksSignatureAndBytes(t *testing.T) {
	n := tronfake.New(tronfake.Options{})
	owner, _ := crypto.GenerateKey()
	other, _ := crypto.GenerateKey()
	if err := n.Fund(tron.EncodeAddress(tronfake.KeyAddress(owner)), 10_000_000, 0); err != nil {
		t.Fatal(err)
	}
	c := tron.TransferContract{Owner: tronfake.KeyAddress(owner), To: tronfake.KeyAddress(other), Amount: 1_000_000}
	raw := tron.RawTx{Contracts: []tron.Contract{{Type: tron.TransferContractType, TypeURL: "type.googleapis.com/protocol.TransferContract", Value: c.Marshal()}},
		RefBlockBytes: []byte{0, 0}, Timestamp: tronfake.GenesisMs + 1000, Expiration: tronfake.GenesisMs + 60_000}
	// The genesis block's id, bytes 8..16, as a wallet reads it.
	raw.RefBlockHash = genesisHashPart(t, n)
	b := raw.Marshal()

	bad, _ := tronfake.Sign(other, b)
	if res := n.Accept(tron.MarshalTransaction(b, [][]byte{bad})); res.Result || res.Code != "SIGERROR" {
		t.Fatalf("another key's signature: %+v", res)
	}
	good, _ := tronfake.Sign(owner, b)
	padded := append(tron.MarshalTransaction(b, [][]byte{good}), 0x2a, 0x00) // a trailing empty field 5
	if res := n.Accept(padded); res.Result {
		t.Fatalf("non-canonical bytes: %+v", res)
	}
	signed := tron.MarshalTransaction(b, [][]byte{good})
	res := n.Accept(signed)
	if !res.Result || res.TxID != tron.TxID(b) || !n.VerifiedTx(res.TxID) {
		t.Fatalf("a good transfer: %+v", res)
	}
	if got, ok := n.SignedBytes(res.TxID); !ok || !bytes.Equal(got, signed) {
		t.Fatal("the node does not hold the bytes it accepted")
	}
	if again := n.Accept(signed); again.Code != "DUP_TRANSACTION_ERROR" {
		t.Fatalf("a duplicate: %+v", again)
	}
	n.Mine(1)
	if info, ok := n.Receipt(res.TxID); !ok || info.BlockNumber != 1 || info.Fee != 1_100_000 { // activates the payee
		t.Fatalf("receipt %+v", info)
	}
}

func genesisHashPart(t *testing.T, n *tronfake.Node) []byte {
	t.Helper()
	// The TaPoS fields of a transaction the fake built at the head (the
	// genesis block): a payment of the test wallet to itself.
	txid, err := n.Pay(n.Payer(), "TRX", 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := n.SignedBytes(txid)
	raw, _, err := tron.UnmarshalTransaction(b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tron.UnmarshalRawTx(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.RefBlockHash) != 8 {
		t.Fatalf("ref block hash %s", hex.EncodeToString(r.RefBlockHash))
	}
	return r.RefBlockHash
}
