package tron_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain/tron"
)

// documented serves the answers of testdata/ (see its README for their
// sources) as a java-tron full-node port would: path → file.
func documented(t *testing.T, files map[string]string) *tron.HTTPClient {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Error(err)
		}
		if strings.HasSuffix(name, ".txt") { // a page, not an answer
			w.WriteHeader(http.StatusNotFound)
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return tron.NewClient(srv.URL, "", 5*time.Second)
}

func TestDocumentedDryRuns(t *testing.T) {
	ctx := context.Background()
	call := func(file string) tron.TransactionExtention {
		t.Helper()
		c := documented(t, map[string]string{"/wallet/triggerconstantcontract": file})
		ext, err := c.TriggerConstantContract(ctx, tron.TriggerRequest{OwnerAddress: "417946f66d0fc67924da0ac9936183ab3b07c81126",
			ContractAddress: "41a614f803b6fd780986a42c78ec9c7f77e6ded13c", FunctionSelector: "transfer(address,uint256)"})
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		return ext
	}

	ok := call("triggerconstantcontract_transfer.json")
	if reverted, _ := ok.Reverted(); reverted || !ok.Result.Result || ok.Energy() != 29631 || ok.Transaction == nil ||
		ok.Transaction.TxID != "5c280444c82f3050e4b0c672ab98bae264830d80b09db6c861b31699f6bcaaa8" ||
		ok.Transaction.RawData.Contract[0].Parameter.Value.ContractAddress != "419e62be7f4f103c36507cb2a753418791b1cdc182" {
		t.Fatalf("documented transfer dry run: %+v", ok)
	}

	rev := call("triggerconstantcontract_revert.json")
	reverted, why := rev.Reverted()
	if !reverted || !rev.Result.Result || why != "ERC20: transfer amount exceeds balance" {
		t.Fatalf("revert: %v %q %+v", reverted, why, rev)
	}
	// A bare revert (no reason string) is known by transaction.ret alone.
	rev.ConstantResult = []string{""}
	if reverted, why := rev.Reverted(); !reverted || why != "REVERT opcode executed" {
		t.Fatalf("bare revert: %v %q", reverted, why)
	}

	pen := call("triggerconstantcontract_penalty.json")
	if reverted, _ := pen.Reverted(); reverted || pen.EnergyUsed != 64285 || pen.EnergyPenalty != 34635 || pen.Energy() != 64285+34635 {
		t.Fatalf("penalty: %+v", pen)
	}
}

func TestDocumentedBlocksAndReceipts(t *testing.T) {
	ctx := context.Background()
	c := documented(t, map[string]string{
		"/wallet/getblockbylimitnext":          "getblockbylimitnext.json",
		"/wallet/gettransactioninfobyblocknum": "gettransactioninfobyblocknum.json",
	})
	blocks, err := c.BlocksByLimitNext(ctx, 62021135, 62021137)
	if err != nil || len(blocks) != 2 || blocks[0].Number() != 62021135 || blocks[1].BlockHeader.RawData.ParentHash != blocks[0].BlockID ||
		len(blocks[0].Transactions) != 1 || len(blocks[1].Transactions) != 0 {
		t.Fatalf("blocks: %+v %v", blocks, err)
	}
	tx := blocks[0].Transactions[0]
	v := tx.RawData.Contract[0].Parameter.Value
	if !tx.Succeeded() || tx.RawData.Contract[0].Type != "TriggerSmartContract" || tx.RawData.FeeLimit != 100_000_000 ||
		v.ContractAddress != "41a614f803b6fd780986a42c78ec9c7f77e6ded13c" || !strings.HasPrefix(v.Data, "a9059cbb") {
		t.Fatalf("transaction: %+v", tx)
	}
	// Asked for a range that does not start where asked, the client refuses.
	if _, err := c.BlocksByLimitNext(ctx, 62021134, 62021137); err == nil {
		t.Fatal("a range from another height was accepted")
	}

	infos, err := c.TransactionInfoByBlockNum(ctx, 62021135)
	if err != nil || len(infos) != 1 {
		t.Fatalf("receipts: %+v %v", infos, err)
	}
	info := infos[0]
	if info.ID != tx.TxID || info.Failed() || info.Fee != 6_353_000 || info.Receipt.EnergyUsageTotal != 29650 || len(info.Log) != 1 ||
		info.Log[0].Topics[0] != tron.TransferTopic {
		t.Fatalf("receipt: %+v", info)
	}
	if amount, _ := new(big.Int).SetString(info.Log[0].Data, 16); amount.Int64() != 25_000_000 {
		t.Fatalf("amount %s", amount)
	}
}

// Nile block 66987565 as TRON's HTTP API documentation shows it: the
// header (getblock's example, the same protocol.Block that getnowblock and
// getblockbynum answer) and the receipts of its first two transactions.
func TestDocumentedNileBlock(t *testing.T) {
	ctx := context.Background()
	c := documented(t, map[string]string{
		"/wallet/getnowblock":                  "getblock_nile_66987565.json",
		"/wallet/getblockbynum":                "getblock_nile_66987565.json",
		"/wallet/gettransactioninfobyblocknum": "gettransactioninfobyblocknum_nile_66987565.json",
	})
	head, err := c.NowBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byNum, err := c.BlockByNum(ctx, 66987565)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []tron.Block{head, byNum} {
		if b.Number() != 66987565 || b.BlockID != "0000000003fe262d52bfa4b2814f816fd2e57af5b98a33d60d8630a03a908e0e" ||
			b.BlockHeader.RawData.ParentHash != "0000000003fe262c85cd6b02033f4c3e5c1efa35de256a17bd906dc61fb1aeed" ||
			b.BlockHeader.RawData.Timestamp != 1777445121000 || len(b.Transactions) != 0 {
			t.Fatalf("documented block: %+v", b)
		}
		// A block id starts with its height, the parent's with height-1.
		if !strings.HasPrefix(b.BlockID, fmt.Sprintf("%016x", b.Number())) ||
			!strings.HasPrefix(b.BlockHeader.RawData.ParentHash, fmt.Sprintf("%016x", b.Number()-1)) {
			t.Fatalf("block id and height disagree: %+v", b)
		}
	}

	infos, err := c.TransactionInfoByBlockNum(ctx, 66987565)
	if err != nil || len(infos) != 2 {
		t.Fatalf("receipts: %+v %v", infos, err)
	}
	ids := []string{"ff44a2823a870c12f12a4ca6e7647650356bc2bb5e02c5855312cf2db4c950c1",
		"0419405287081aa44f4d78725e6fabac8d14e71abf9e28825ad4f4e61a5bccb7"}
	for i, info := range infos {
		// Paid in burnt bandwidth only: no result field, no energy, no logs.
		if info.ID != ids[i] || info.Fee != 267_000 || info.Receipt.NetFee != 267_000 || info.BlockNumber != head.Number() ||
			info.BlockTimeStamp != head.BlockHeader.RawData.Timestamp || info.Failed() || len(info.Log) != 0 ||
			info.Receipt.EnergyUsageTotal != 0 {
			t.Fatalf("receipt %d: %+v", i, info)
		}
	}
}

// A block the node lacks is answered {} (documented for getblock).
func TestDocumentedMissingBlock(t *testing.T) {
	c := documented(t, map[string]string{"/wallet/getblockbynum": "getblock_not_found.json"})
	if _, err := c.BlockByNum(context.Background(), 1<<40); !errors.Is(err, tron.ErrNotFound) {
		t.Fatalf("missing block: %v", err)
	}
}

// java-tron's full-node port has no /walletsolidity: the client's error
// names the solidity endpoint and the setting that fixes it.
func TestDocumentedSolidityOnFullNodePort(t *testing.T) {
	c := documented(t, map[string]string{"/walletsolidity/getnowblock": "walletsolidity_on_fullnode_port.txt"})
	_, err := c.SolidBlock(context.Background())
	if err == nil || !strings.Contains(err.Error(), "/walletsolidity/getnowblock") || !strings.Contains(err.Error(), "HTTP 404") ||
		!strings.Contains(err.Error(), "PIC_TRON_SOLIDITY_URL") || errors.Is(err, tron.ErrThrottled) {
		t.Fatalf("solidified block on the full-node port: %v", err)
	}
}

// The fake node answers a reverted dry run in the documented shape: the
// same fields as testdata/triggerconstantcontract_revert.json.
func TestFakeRevertHasTheDocumentedShape(t *testing.T) {
	node := newFakeNode(t)
	fake, err := tron.NewClient(node.url(), "", 5*time.Second).TriggerConstantContract(context.Background(), tron.TriggerRequest{
		OwnerAddress: "417946f66d0fc67924da0ac9936183ab3b07c81126", ContractAddress: node.tokenAddress(),
		FunctionSelector: "transfer(address,uint256)", Parameter: strings.Repeat("0", 64) + strings.Repeat("0", 63) + "1"})
	if err != nil {
		t.Fatal(err)
	}
	doc := documented(t, map[string]string{"/wallet/triggerconstantcontract": "triggerconstantcontract_revert.json"})
	want, err := doc.TriggerConstantContract(context.Background(), tron.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range []tron.TransactionExtention{fake, want} {
		reverted, _ := ext.Reverted()
		if !reverted || !ext.Result.Result || ext.Result.Code != "" || ext.Result.Message != want.Result.Message || ext.EnergyUsed <= 0 ||
			len(ext.ConstantResult) != 1 {
			t.Fatalf("revert answer: %+v (documented %+v)", ext, want)
		}
	}
}
