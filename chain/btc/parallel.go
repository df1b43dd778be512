package btc

// Bounds of the concurrent work of one scan.
const (
	// maxConcurrentReports bounds the ledger commands in flight. The event
	// store commits concurrent appends together, so a block's deposits cost
	// about one commit instead of one each.
	maxConcurrentReports = 32
)
