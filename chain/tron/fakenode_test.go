package tron_test

import (
	"crypto/ecdsa"
	"math/big"
	"net/http/httptest"
	"testing"

	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
)

// fakeNode is the FAKE TRON node of package tronfake served over HTTP for
// one test, with helpers that fail the test instead of returning errors.
type fakeNode struct {
	*tronfake.Node
	t   testing.TB
	srv *httptest.Server
}

func newFakeNode(t testing.TB) *fakeNode {
	f := &fakeNode{Node: tronfake.New(tronfake.Options{}), t: t}
	f.srv = httptest.NewServer(f.Node)
	t.Cleanup(f.srv.Close)
	return f
}

const (
	fakeEnergyNew = tronfake.EnergyNewHolder
	fakeGenesisMs = tronfake.GenesisMs
)

func (f *fakeNode) url() string          { return f.srv.URL }
func (f *fakeNode) tokenAddress() string { return f.Token() }

func mustAddr(t testing.TB, s string) []byte {
	b, err := tron.DecodeAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keyAddress(k *ecdsa.PrivateKey) []byte { return tronfake.KeyAddress(k) }

// fund credits TRX (sun) and USDT (base units) at genesis.
func (f *fakeNode) fund(addr []byte, sun int64, usdt int64) {
	f.t.Helper()
	if err := f.Fund(tron.EncodeAddress(addr), sun, usdt); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeNode) balances(addr string) (sun int64, usdt *big.Int) {
	f.t.Helper()
	sun, usdt, err := f.Balances(addr)
	if err != nil {
		f.t.Fatal(err)
	}
	return sun, usdt
}

// payTRX sends sun from key's account to to, as a customer's wallet would
// (built, signed, broadcast); it returns the txid.
func (f *fakeNode) payTRX(key *ecdsa.PrivateKey, to string, sun int64) string {
	f.t.Helper()
	txid, err := f.PayTRX(key, to, sun)
	if err != nil {
		f.t.Fatal(err)
	}
	return txid
}

// payUSDT calls transfer(to, units) on the USDT contract from key's account.
func (f *fakeNode) payUSDT(key *ecdsa.PrivateKey, to string, units int64) string {
	f.t.Helper()
	txid, err := f.PayUSDT(key, to, units)
	if err != nil {
		f.t.Fatal(err)
	}
	return txid
}

func (f *fakeNode) mine(n int)                              { f.Mine(n) }
func (f *fakeNode) reorg(depth int, keep func(string) bool) { f.Reorg(depth, keep) }
func (f *fakeNode) height() int64                           { return f.Height() }
func (f *fakeNode) blockOf(txid string) int64               { return f.BlockOf(txid) }
func (f *fakeNode) failNext(n int)                          { f.FailNext(n) }
func (f *fakeNode) stallNext(n int)                         { f.StallNext(n) }
func (f *fakeNode) faults() int                             { return f.Faults() }
func (f *fakeNode) verifiedTx(txid string) bool             { return f.VerifiedTx(txid) }
