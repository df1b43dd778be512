-- The event feed as references into the log (issue #23): where the log is
-- in this database (the Postgres store), a merchant's feed is its events'
-- global positions in seq order, read joined with the log, instead of a
-- copy of every event (a third of an invoice's heap rows, and as big as
-- the log itself). event_feed keeps the copies written before, and every
-- row where the log is elsewhere (EventStoreDB); a rebuild moves the
-- former here.
CREATE TABLE event_feed_refs (
    merchant_id TEXT   NOT NULL,
    seq         BIGINT NOT NULL,
    log_row     BIGINT NOT NULL, -- events.global_position of the store's schema
    PRIMARY KEY (merchant_id, seq)
);
