package domain

import (
	"math/big"
	"testing"
)

func TestComputeFee(t *testing.T) {
	tests := []struct {
		base     string
		bps      int64
		decimals int32
		want     string
	}{
		{"49.99", FeeBps, 6, "0.124975"},          // the seed's example
		{"49.99", ConversionFeeBps, 6, "0.24995"}, // 0.5 %
		{"0.000001", FeeBps, 6, "0"},              // 0.0000000025 rounds down
		{"0.0002", FeeBps, 6, "0.000001"},         // 0.0000005 is a half: up
		{"0.000199", FeeBps, 6, "0"},              // 0.0000004975
		{"1", FeeBps, 8, "0.0025"},
		{"0.00000002", ConversionFeeBps, 8, "0"},                     // 0.0000000001
		{"0.00000100", ConversionFeeBps, 8, "0.00000001"},            // half: 0.000000005 up
		{"1.000000000000000001", FeeBps, 18, "0.0025"},               // 0.0025000000000000000025
		{"1.000000000000000200", FeeBps, 18, "0.002500000000000001"}, // ...0005 half up
	}
	for _, tc := range tests {
		got := ComputeFee(MustAmount(tc.base), tc.bps, tc.decimals)
		if got.Fee.String() != tc.want {
			t.Errorf("fee(%s, %d bps, %d) = %s, want %s", tc.base, tc.bps, tc.decimals, got.Fee, tc.want)
		}
		if err := got.Verify(); err != nil {
			t.Error(err)
		}
	}
	tampered := ComputeFee(MustAmount("49.99"), FeeBps, 6)
	tampered.Fee = MustAmount("0.124976")
	if tampered.Verify() == nil {
		t.Fatal("a tampered fee verified")
	}
}

// FuzzFee checks the fee against integer arithmetic in base units:
// fee_units = floor((units*bps + 5000) / 10000), which is half-up.
func FuzzFee(f *testing.F) {
	f.Add(uint64(49990000), uint8(6), false)
	f.Add(uint64(200), uint8(6), true)
	f.Add(uint64(1), uint8(18), false)
	f.Fuzz(func(t *testing.T, units uint64, decimals uint8, converting bool) {
		d := int32(decimals % 19)
		bps := TierBps(converting)
		u := new(big.Int).SetUint64(units)
		fc := ComputeFee(FromBaseUnits(u, d), bps, d)
		want := new(big.Int).Mul(u, big.NewInt(bps))
		want.Add(want, big.NewInt(5000)).Quo(want, big.NewInt(10000))
		got, err := fc.Fee.BaseUnits(d)
		if err != nil {
			t.Fatalf("fee %s has more than %d decimals", fc.Fee, d)
		}
		if got.Cmp(want) != 0 {
			t.Fatalf("fee of %d units at %d bps = %s units, want %s", units, bps, got, want)
		}
		if fc.Fee.Cmp(fc.Base) > 0 {
			t.Fatalf("fee above base")
		}
	})
}
