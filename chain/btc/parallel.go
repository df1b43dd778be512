package btc

// Bounds of the concurrent work of one scan.
const (
	// maxConcurrentReports bounds the ledger commands in flight. The event
	// store commits concurrent appends together, so a block's deposits cost
	// about one commit instead of one each. 32, as on Ethereum: a block's
	// 30 deposits and the previous block's 30 confirmations go in together.
	maxConcurrentReports = 32
)
