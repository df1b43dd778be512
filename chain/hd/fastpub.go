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
	data := make([]byte, 0, 37)
	data = append(data, b.compressed...)
	data = binary.BigEndian.AppendUint32(data, index)
	mac := hmac.New(sha512.New, b.chainCode)
	mac.Write(data)
	sum := mac.Sum(nil)
	var il btcec.ModNScalar
	if overflow := il.SetByteSlice(sum[:32]); overflow || il.IsZero() {
		return nil, fmt.Errorf("hd: index %d: %w", index, hdkeychain.ErrInvalidChild)
	}
	var ilG, childPoint btcec.JacobianPoint
	btcec.ScalarBaseMultNonConst(&il, &ilG)
	btcec.AddNonConst(&ilG, &b.point, &childPoint)
	if (childPoint.X.IsZero() && childPoint.Y.IsZero()) || childPoint.Z.IsZero() {
		return nil, fmt.Errorf("hd: index %d: %w", index, hdkeychain.ErrInvalidChild)
	}
	childPoint.ToAffine()
	return btcec.NewPublicKey(&childPoint.X, &childPoint.Y), nil
}
