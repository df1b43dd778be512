package reserves

import (
	"math/big"
	"testing"

	"github.com/acceptcryptohere/gateway/domain"
)

func units(v int64) *big.Int { return big.NewInt(v) }

func TestCompareAgreesAndCountsTheFloat(t *testing.T) {
	a := Compare(Input{Asset: "X", Decimals: 2, Held: domain.MustAmount("3.5"), Role: RoleDeposit, Hot: "hot",
		Expected: map[string]*big.Int{"a": units(100), "b": units(0)},
		Chain:    map[string]*big.Int{"a": units(100), "b": units(0), "hot": units(300)}})
	if !a.OK || !a.Float.Equal(domain.MustAmount("0.5")) || !a.Chain.Equal(domain.MustAmount("4")) || !a.Diff.Equal(domain.MustAmount("0.5")) {
		t.Fatalf("%+v", a)
	}
}

func TestCompareNamesTheAddressesThatDiffer(t *testing.T) {
	a := Compare(Input{Asset: "X", Decimals: 2, Held: domain.MustAmount("3"), Role: RoleDeposit, Hot: "hot",
		Expected: map[string]*big.Int{"a": units(100), "b": units(50)},
		Chain:    map[string]*big.Int{"a": units(60), "b": units(50), "c": units(7), "hot": units(140)},
		Notes:    map[string]string{"c": "unmatched"}})
	if a.OK || len(a.Differ) != 3 {
		t.Fatalf("%+v", a)
	}
	want := []struct{ addr, diff string }{{"a", "-0.4"}, {"hot", "-0.1"}, {"c", "0.07"}}
	for i, w := range want {
		if d := a.Differ[i]; d.Address != w.addr || d.Diff.String() != w.diff {
			t.Fatalf("differ[%d] = %+v, want %s %s", i, d, w.addr, w.diff)
		}
	}
	if a.Differ[2].Note != "unmatched" || a.Differ[1].Role != RoleHot {
		t.Fatalf("%+v", a.Differ)
	}
}

func TestCompareWithoutHotWalletNeedsEveryUnit(t *testing.T) {
	a := Compare(Input{Asset: "BTC", Decimals: 8, Held: domain.MustAmount("1"), Role: RoleOutput,
		Expected: map[string]*big.Int{"o:0": units(90_000_000)}, Chain: map[string]*big.Int{"o:0": units(90_000_000)}})
	if a.OK || len(a.Differ) != 1 || a.Differ[0].Role != RoleRest || a.Differ[0].Diff.String() != "-0.1" {
		t.Fatalf("%+v", a)
	}
}

// Without a hot wallet, outputs the records name as the operator's (the
// Float) are held beyond the ledger: exactly that much more reconciles,
// and is the float; any other rest differs as before.
func TestCompareWithoutHotWalletCountsTheNamedFloat(t *testing.T) {
	in := Input{Asset: "BTC", Decimals: 8, Held: domain.MustAmount("0.001"), Role: RoleOutput, Float: units(500_000),
		Expected: map[string]*big.Int{"a": units(100_000), "b": units(500_000)}, Chain: map[string]*big.Int{"a": units(100_000), "b": units(500_000)}}
	if a := Compare(in); !a.OK || a.Float.String() != "0.005" || a.Diff.String() != "0.005" {
		t.Fatalf("%+v", a)
	}
	in.Held = domain.MustAmount("0.0011") // the outputs hold 0.0001 less than ledger + float
	if a := Compare(in); a.OK || len(a.Differ) != 1 || a.Differ[0].Role != RoleRest || a.Differ[0].Diff.String() != "-0.0001" {
		t.Fatalf("%+v", a)
	}
}
