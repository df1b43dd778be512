package hd

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
)

// pubBranch is a branch's public key kept as a curve point. Deriving a
// receive address is then one HMAC, one base-point multiplication and one
// point addition (BIP-32 CKDpub); hdkeychain re-parses (decompresses) the
// parent key on every call and the child key once more, which doubled the
// cost of an invoice's address.
type pubBranch struct {
	point      btcec.JacobianPoint
	compressed []byte // the parent key serialised, as BIP-32 hashes it
	chainCode  []byte
}

func newPubBranch(k *hdkeychain.ExtendedKey) (*pubBranch, error) {
	pub, err := k.ECPubKey()
	if err != nil {
		return nil, err
	}
	b := &pubBranch{compressed: pub.SerializeCompressed(), chainCode: append([]byte(nil), k.ChainCode()...)}
	pub.AsJacobian(&b.point)
	return b, nil
}

// child derives the public key at the non-hardened index. Errors: the
// (probability 2^-127) invalid child of BIP-32, for which a caller moves to
// the next index.
func (b *pubBranch) child(index uint32) (*btcec.PublicKey, error) {
	keys, errs := b.children(index, 1)
	return keys[0], errs[0]
}

// children derives the public keys of indexes from, from+1, ... from+n-1
// with one field inversion for all of them (Montgomery's trick) instead of
// one each: making a point affine is an inversion, and that
// inversion was 39 % of deriving an address (CPU profile under load). An
// index BIP-32 skips (probability about 2^-127) gets its error in errs.
func (b *pubBranch) children(from uint32, n int) ([]*btcec.PublicKey, []error) {
	points := make([]btcec.JacobianPoint, n)
	errs := make([]error, n)
	var mac [64]byte
	for i := range points {
		index := from + uint32(i)
		data := binary.BigEndian.AppendUint32(append(make([]byte, 0, 37), b.compressed...), index)
		h := hmac.New(sha512.New, b.chainCode)
		h.Write(data)
		h.Sum(mac[:0])
		var il btcec.ModNScalar
		if overflow := il.SetByteSlice(mac[:32]); overflow || il.IsZero() {
			errs[i] = fmt.Errorf("hd: index %d: %w", index, hdkeychain.ErrInvalidChild)
			continue
		}
		var ilG btcec.JacobianPoint
		btcec.ScalarBaseMultNonConst(&il, &ilG)
		btcec.AddNonConst(&ilG, &b.point, &points[i])
		if (points[i].X.IsZero() && points[i].Y.IsZero()) || points[i].Z.IsZero() {
			errs[i] = fmt.Errorf("hd: index %d: %w", index, hdkeychain.ErrInvalidChild)
		}
	}
	// prefix[i] is the product of the Z of the good points before i.
	prefix := make([]btcec.FieldVal, n)
	var acc btcec.FieldVal
	acc.SetInt(1)
	for i := range points {
		prefix[i] = acc
		if errs[i] == nil {
			acc.Mul(&points[i].Z)
		}
	}
	inv := *acc.Inverse() // 1 / (Z_0 Z_1 ... Z_{n-1})
	keys := make([]*btcec.PublicKey, n)
	for i := n - 1; i >= 0; i-- {
		if errs[i] != nil {
			continue
		}
		p := &points[i]
		var zInv, zInv2, zInv3, x, y btcec.FieldVal
		zInv.Mul2(&inv, &prefix[i]) // 1 / Z_i
		inv.Mul(&p.Z)               // now 1 / (Z_0 ... Z_{i-1})
		zInv2.SquareVal(&zInv)
		zInv3.Mul2(&zInv2, &zInv)
		x.Mul2(&p.X, &zInv2).Normalize()
		y.Mul2(&p.Y, &zInv3).Normalize()
		keys[i] = btcec.NewPublicKey(&x, &y)
	}
	return keys, errs
}
