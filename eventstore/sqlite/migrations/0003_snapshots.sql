-- Snapshots (eventstore.Snapshots): one per stream and kind, a fold's
-- state at a version of the stream. A cache beside the log, not part of
-- it: deleting every row loses nothing, the folds read from the start.
CREATE TABLE snapshots (
    stream   TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    version  INTEGER NOT NULL,
    data     BLOB    NOT NULL,
    saved_at INTEGER NOT NULL, -- unix microseconds, UTC
    PRIMARY KEY (stream, kind)
);
