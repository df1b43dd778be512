package eth

import (
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// What the signer gives back must move what was asked: the same
// destination and call, the same ETH, or (its earlier transaction of a
// payout, with other fees) the same amount before its own most gas.
func TestSameTransfer(t *testing.T) {
	payee, thief, token := common.HexToAddress("0x01"), common.HexToAddress("0x02"), common.HexToAddress("0x03")
	gwei := func(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1_000_000_000)) }
	amount := new(big.Int).Mul(big.NewInt(5), big.NewInt(1e17)) // 0.5 ETH
	ask := func(to common.Address, feeCap *big.Int, data []byte) *types.DynamicFeeTx {
		value := new(big.Int).Sub(amount, new(big.Int).Mul(big.NewInt(21_000), feeCap))
		if data != nil {
			value = new(big.Int)
		}
		return &types.DynamicFeeTx{To: &to, Gas: 21_000, GasFeeCap: feeCap, GasTipCap: gwei(1), Value: value, Data: data}
	}
	asked := ask(payee, gwei(30), nil)
	call := transferData(payee, big.NewInt(20_000_000))
	for name, c := range map[string]struct {
		signed *types.DynamicFeeTx
		asked  *types.DynamicFeeTx
		err    string
	}{
		"the same":                       {asked, asked, ""},
		"earlier, with other fees":       {ask(payee, gwei(45), nil), asked, ""},
		"earlier, to another address":    {ask(thief, gwei(45), nil), asked, "is to"},
		"earlier, less than the amount":  {&types.DynamicFeeTx{To: &payee, Gas: 21_000, GasFeeCap: gwei(45), Value: big.NewInt(1)}, asked, "sends"},
		"a token transfer, other fees":   {ask(token, gwei(45), call), ask(token, gwei(30), call), ""},
		"a token transfer, other amount": {ask(token, gwei(45), transferData(payee, big.NewInt(1))), ask(token, gwei(30), call), "calls"},
		"a token transfer to a thief":    {ask(token, gwei(30), transferData(thief, big.NewInt(20_000_000))), ask(token, gwei(30), call), "calls"},
		"a token transfer, other token":  {ask(thief, gwei(30), call), ask(token, gwei(30), call), "is to"},
	} {
		err := sameTransfer(types.NewTx(c.signed), c.asked)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: %v, want %q", name, err, c.err)
		}
	}
}
