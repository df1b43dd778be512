-- event_id loses its UNIQUE index: random UUIDs inserted into a large
-- index cost a page miss each, most of a large rebuild's time, and the
-- runner's checkpoint fence already keeps an event from being applied twice.
ALTER TABLE event_feed DROP CONSTRAINT IF EXISTS event_feed_event_id_key;
