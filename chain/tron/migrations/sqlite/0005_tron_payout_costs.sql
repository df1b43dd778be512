-- What a payout's transaction burned, kept beside it until the log has
-- the operator's part of it (money rule 7, #24): burned_sun is its info's
-- fee once it is in a block (-1 while unknown), tx_failed 1 when it
-- failed there, mined_block its block; cost_booked is 1 once its
-- NetworkCostPaid is in the log (or none is owed), 0 while the sender is
-- to append it again (each sweep pass). Rows from before start unknown:
-- the sender asks the node for their info.
ALTER TABLE tron_payout_txs ADD COLUMN burned_sun BIGINT NOT NULL DEFAULT -1;
ALTER TABLE tron_payout_txs ADD COLUMN tx_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tron_payout_txs ADD COLUMN mined_block BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tron_payout_txs ADD COLUMN cost_booked INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tron_payout_txs_cost_due ON tron_payout_txs (cost_booked);
