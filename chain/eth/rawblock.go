package eth

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/rpc"
)

// NodeClient is go-ethereum's client with two calls made cheaper where the
// node offers go-ethereum's own methods:
//   - blocks come as RLP (debug_getRawBlock): as JSON, a full block costs
//     the node a sender recovery and an object per transaction, and us the
//     decoding of all of it; as RLP it is one byte string whose fields
//     decode without any signature work;
//   - headers come from eth_getHeaderByNumber: the standard
//     eth_getBlockByNumber(n, false) also hashes and lists every
//     transaction of the block.
//
// A node that refuses one of them (most public providers close the debug
// namespace) gets the standard call, and the refused one is tried again
// only after preferredRetryAfter.
type NodeClient struct {
	*ethclient.Client
	rpc *rpc.Client

	mu      sync.Mutex
	refused map[string]time.Time // method → when it failed where the standard call worked
}

// preferredRetryAfter is how long a method the node refused is not asked.
const preferredRetryAfter = 10 * time.Minute

// NewNodeClient wraps an RPC connection.
func NewNodeClient(c *rpc.Client) *NodeClient {
	return &NodeClient{Client: ethclient.NewClient(c), rpc: c, refused: map[string]time.Time{}}
}

var _ Client = (*NodeClient)(nil)

// BlockByNumber returns the block at n (the head when n is nil).
func (c *NodeClient) BlockByNumber(ctx context.Context, n *big.Int) (*types.Block, error) {
	return preferred(ctx, c, "debug_getRawBlock", func() (*types.Block, error) {
		var raw hexutil.Bytes
		if err := c.rpc.CallContext(ctx, &raw, "debug_getRawBlock", blockArg(n)); err != nil {
			return nil, err
		}
		if len(raw) == 0 {
			return nil, ethereum.NotFound
		}
		b := new(types.Block)
		if err := rlp.DecodeBytes(raw, b); err != nil {
			return nil, fmt.Errorf("decode raw block: %w", err)
		}
		if n != nil && b.Number().Cmp(n) != 0 {
			return nil, fmt.Errorf("raw block: asked for %v, got %v", n, b.Number())
		}
		return b, nil
	}, func() (*types.Block, error) { return c.Client.BlockByNumber(ctx, n) })
}

// HeaderByNumber returns the header at n (the head when n is nil).
func (c *NodeClient) HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error) {
	return preferred(ctx, c, "eth_getHeaderByNumber", func() (*types.Header, error) {
		var h *types.Header
		if err := c.rpc.CallContext(ctx, &h, "eth_getHeaderByNumber", blockArg(n)); err != nil {
			return nil, err
		}
		if h == nil {
			return nil, ethereum.NotFound
		}
		return h, nil
	}, func() (*types.Header, error) { return c.Client.HeaderByNumber(ctx, n) })
}

// preferred runs fast, go-ethereum's cheaper call named method, unless the
// node refused it lately; when fast fails for another reason than a
// missing block, standard runs, and its success marks method as refused.
func preferred[T any](ctx context.Context, c *NodeClient, method string, fast, standard func() (T, error)) (T, error) {
	c.mu.Lock()
	at, off := c.refused[method]
	c.mu.Unlock()
	if !off || time.Since(at) > preferredRetryAfter {
		v, err := fast()
		if err == nil || errors.Is(err, ethereum.NotFound) || ctx.Err() != nil {
			return v, err
		}
		v, err = standard()
		if err == nil {
			c.mu.Lock()
			c.refused[method] = time.Now()
			c.mu.Unlock()
		}
		return v, err
	}
	return standard()
}

// blockArg is n as a block parameter; a negative n is a tag
// (rpc.FinalizedBlockNumber: "finalized"), as in ethclient.
func blockArg(n *big.Int) string {
	if n == nil {
		return "latest"
	}
	if n.Sign() < 0 && n.IsInt64() {
		return rpc.BlockNumber(n.Int64()).String()
	}
	return hexutil.EncodeBig(n)
}
