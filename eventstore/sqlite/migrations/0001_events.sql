-- The event log. global_position is the global order: AUTOINCREMENT never
-- reuses a committed value, and a single writer (SQLite's write lock) assigns
-- positions in commit order, so a reader polling global_position > last never
-- skips an event.
CREATE TABLE events (
    global_position INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    stream          TEXT    NOT NULL,
    version         INTEGER NOT NULL, -- 0-based position in its stream
    type            TEXT    NOT NULL,
    data            BLOB,
    metadata        BLOB,
    recorded_at     INTEGER NOT NULL, -- unix microseconds, UTC
    UNIQUE (stream, version)
);
