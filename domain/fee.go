package domain

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// Fee tiers in basis points.
const (
	FeeBps           = 25 // 0.25 %
	ConversionFeeBps = 50 // 0.5 %, when a payment is converted to another coin
)

// RoundingHalfUp names the only rounding rule we use, recorded in events.
const RoundingHalfUp = "half_up"

// FeeCalc is a fee with the inputs that produced it, recorded in events so an
// auditor can recompute it from the log alone.
type FeeCalc struct {
	Base     Amount `json:"base"`
	Bps      int64  `json:"bps"`
	Decimals int32  `json:"decimals"`
	Rounding string `json:"rounding"`
	Fee      Amount `json:"fee"`
}

// ComputeFee is base × bps / 10000, rounded half-up to decimals places.
// Amounts are never negative here, so half-up and half-away-from-zero agree.
func ComputeFee(base Amount, bps int64, decimals int32) FeeCalc {
	if base.IsNegative() || bps < 0 {
		panic(fmt.Sprintf("domain: fee of %s at %d bps", base, bps))
	}
	// Shift, not Div: division stops at decimal.DivisionPrecision digits,
	// which is fewer than an 18-decimal amount times 10^-4 needs.
	fee := base.d.Mul(decimal.NewFromInt(bps)).Shift(-4).Round(decimals)
	return FeeCalc{Base: base, Bps: bps, Decimals: decimals, Rounding: RoundingHalfUp, Fee: Amount{d: fee}}
}

// Verify recomputes the fee from its inputs.
func (f FeeCalc) Verify() error {
	want := ComputeFee(f.Base, f.Bps, f.Decimals)
	if f.Rounding != RoundingHalfUp || !want.Fee.Equal(f.Fee) {
		return fmt.Errorf("fee %s of %s at %d bps: recomputed %s", f.Fee, f.Base, f.Bps, want.Fee)
	}
	return nil
}

// TierBps is the fee tier of an invoice: conversion costs more.
func TierBps(converting bool) int64 {
	if converting {
		return ConversionFeeBps
	}
	return FeeBps
}
