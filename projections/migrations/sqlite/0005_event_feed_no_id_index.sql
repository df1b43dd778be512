-- event_id loses its UNIQUE index: random UUIDs inserted into a large
-- index cost a page miss each, most of a large rebuild's time, and the
-- runner's checkpoint fence already keeps an event from being applied twice.
-- SQLite cannot drop an inline constraint, so the table is rebuilt.
CREATE TABLE event_feed_new (
    merchant_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    event_id    TEXT NOT NULL,
    stream      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    type        TEXT NOT NULL,
    data        TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    position    TEXT NOT NULL,
    PRIMARY KEY (merchant_id, seq)
);
INSERT INTO event_feed_new SELECT merchant_id, seq, event_id, stream, version, type, data, metadata, recorded_at, position FROM event_feed;
DROP TABLE event_feed;
ALTER TABLE event_feed_new RENAME TO event_feed;
