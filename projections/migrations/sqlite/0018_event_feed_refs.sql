-- The event feed as references into the log (issue #23): where the log is
-- in this database, a merchant's feed is its events' global positions in
-- seq order, read joined with the log, instead of a copy of every event
-- (as big as the log itself). WITHOUT ROWID: the key holds the whole row,
-- so a page of the feed is one index range, then the log's rows by rowid.
-- event_feed keeps the copies written before, and every row where the log
-- is elsewhere; a rebuild moves the former here.
CREATE TABLE event_feed_refs (
    merchant_id TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    log_row     INTEGER NOT NULL, -- events.global_position
    PRIMARY KEY (merchant_id, seq)
) WITHOUT ROWID;
