package custody

import (
	"context"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/acceptcryptohere/gateway/domain"
)

// KeySource is the seed's wallet (*hd.Wallet).
type KeySource interface {
	PrivateKey(chain domain.Chain, index int64) (*btcec.PrivateKey, error)
}

// Local signs in this process with the seed's keys and checks nothing:
// the embedded mode, where the process that builds a transaction also
// holds the seed (as before the signer existed). A separate signer wraps
// it in a Policy.
type Local struct{ Keys KeySource }

// Sign implements Signer.
func (l Local) Sign(_ context.Context, req Request) ([]byte, error) {
	if req.Chain == domain.ChainBitcoin {
		tx, err := decodeBitcoin(req)
		if err != nil {
			return nil, err
		}
		return signBitcoin(l.Keys, tx, req.Inputs)
	}
	key, err := l.Keys.PrivateKey(req.Chain, req.FromIndex)
	if err != nil {
		return nil, err
	}
	switch req.Chain {
	case domain.ChainTron:
		sig, _, err := signTron(key, req.Unsigned)
		return sig, err
	case domain.ChainEthereum:
		tx, err := decodeEthereum(req.Unsigned)
		if err != nil {
			return nil, err
		}
		return signEthereum(key, tx)
	}
	return nil, refused("signing %s transactions is not supported", req.Chain)
}
