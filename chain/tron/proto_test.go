package tron_test

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/acceptcryptohere/gateway/chain/tron"
)

// A real unsigned TRX transfer as a node built it: the raw_data and its
// raw_data_hex from the /wallet/broadcasttransaction example of QuickNode's
// TRON API documentation (quicknode.com/docs/tron/wallet-broadcasttransaction):
// 1000 sun from 41608f8d… to 41e9d79c…, ref_block_bytes 5e4b, ref_block_hash
// 47c9dc89341b300d, expiration 1591089627000, timestamp 1591089567635. Our
// encoder must produce those bytes exactly, and decode them back.
const docTransferRawHex = "0a025e4b220847c9dc89341b300d40f8fed3a2a72e5a66080112620a2d747970652e676f6f676c65617069732e636f6d2f70726f746f636f6c2e5472616e73666572436f6e747261637412310a1541608f8da72479edc7dd921e4c30bb7e7cddbe722e121541e9d79cc47518930bc322d9bf7cddd260a0260a8d18e8077093afd0a2a72e"

func TestRawTxEncodingMatchesANodes(t *testing.T) {
	owner, _ := hex.DecodeString("41608f8da72479edc7dd921e4c30bb7e7cddbe722e")
	to, _ := hex.DecodeString("41e9d79cc47518930bc322d9bf7cddd260a0260a8d")
	refBytes, _ := hex.DecodeString("5e4b")
	refHash, _ := hex.DecodeString("47c9dc89341b300d")
	r := tron.RawTx{RefBlockBytes: refBytes, RefBlockHash: refHash, Expiration: 1591089627000, Timestamp: 1591089567635,
		Contracts: []tron.Contract{{Type: tron.TransferContractType, TypeURL: "type.googleapis.com/protocol.TransferContract",
			Value: tron.TransferContract{Owner: owner, To: to, Amount: 1000}.Marshal()}}}
	want, _ := hex.DecodeString(docTransferRawHex)
	if got := r.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("encoding:\n got %x\nwant %x", got, want)
	}
	back, err := tron.UnmarshalRawTx(want)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tron.UnmarshalTransfer(back.Contracts[0].Value)
	if err != nil || c.Amount != 1000 || !bytes.Equal(c.Owner, owner) || !bytes.Equal(c.To, to) || back.Expiration != r.Expiration {
		t.Fatalf("decoded %+v %+v %v", back, c, err)
	}
	// A signed transaction round-trips, and a field we do not know is refused.
	signed := tron.MarshalTransaction(want, [][]byte{bytes.Repeat([]byte{7}, 65)})
	raw, sigs, err := tron.UnmarshalTransaction(signed)
	if err != nil || !bytes.Equal(raw, want) || len(sigs) != 1 {
		t.Fatalf("signed round trip: %v", err)
	}
	if _, err := tron.UnmarshalRawTx(append(append([]byte{}, want...), 0x50, 0x01)); err == nil { // field 10 as a varint
		t.Fatal("an unknown field was accepted")
	}
}

// Base58check addresses: USDT's mainnet contract is 41a614f803b6fd780986a42c78ec9c7f77e6ded13c
// (its hex form in TRON's documentation of gettransactioninfobyid logs).
func TestAddresses(t *testing.T) {
	b, err := tron.DecodeAddress("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")
	if err != nil || hex.EncodeToString(b) != "41a614f803b6fd780986a42c78ec9c7f77e6ded13c" {
		t.Fatalf("%x %v", b, err)
	}
	if got := tron.EncodeAddress(b[1:]); got != "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t" {
		t.Fatal(got)
	}
	if h, err := tron.DecodeAddress("41a614f803b6fd780986a42c78ec9c7f77e6ded13c"); err != nil || !bytes.Equal(h, b) {
		t.Fatalf("hex form: %x %v", h, err)
	}
	for _, bad := range []string{"", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u", "0xa614f803b6fd780986a42c78ec9c7f77e6ded13c", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"} {
		if _, err := tron.DecodeAddress(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
