package chain

// Deposit states of a chain/scan Store, as stored in <prefix>_deposits.state:
// seen (in a canonical block), orphaned (its block left the chain, not yet
// seen again), reverted (reported to the ledger as gone), unmatched (no
// invoice of that asset on the address: logged, kept), final (credited and
// its block final: money rule 4). They live here rather than in chain/scan
// because the senders read those tables too.
const (
	ScanSeen      = "seen"
	ScanOrphaned  = "orphaned"
	ScanReverted  = "reverted"
	ScanUnmatched = "unmatched"
	ScanFinal     = "final"
)
