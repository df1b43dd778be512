-- A transaction's network cost, kept beside it until the log has it (money
-- rule 7, #24): mined_block is its receipt's block, set with fee_paid_wei;
-- cost_booked is 1 once its NetworkCostPaid is in the log (or it owes none:
-- an ETH payout's fee is the merchant's), 0 while the sender is to append
-- it again. Rows from before start at 0: the sender books what the log may
-- lack (a repeat adds nothing: the event's id derives from the txid).
ALTER TABLE eth_txs ADD COLUMN mined_block BIGINT NOT NULL DEFAULT 0;
ALTER TABLE eth_txs ADD COLUMN cost_booked INTEGER NOT NULL DEFAULT 0;
CREATE INDEX eth_txs_cost_due ON eth_txs (cost_booked, fee_paid_wei);
