package projections

// SetRebuildSizes sets a rebuild's batch size and how many events it holds
// the balances and the feed's references for (heldState), so that a test's
// small log crosses both; the returned func restores them.
func SetRebuildSizes(batch, hold int) (restore func()) {
	b, h := rebuildBatchSize, holdEvents
	rebuildBatchSize, holdEvents = batch, hold
	return func() { rebuildBatchSize, holdEvents = b, h }
}
