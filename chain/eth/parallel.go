package eth

// Bounds of the concurrent work of one scan.
const (
	// maxReceiptFetches bounds the receipt calls in flight to the node.
	maxReceiptFetches = 8
	// maxConcurrentReports bounds the ledger commands in flight. The event
	// store commits concurrent appends together, so a block's deposits cost
	// about one commit instead of one each (32 rather than 8 took the
	// 3,000-transaction block benchmark from a median of 41 to 39 ms).
	maxConcurrentReports = 32
)
