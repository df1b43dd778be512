-- The checkout's branding of each merchant (issue #19): '' when not set,
-- as it was for every merchant projected before these columns existed.
ALTER TABLE merchants ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE merchants ADD COLUMN logo_url TEXT NOT NULL DEFAULT '';
ALTER TABLE merchants ADD COLUMN brand_color TEXT NOT NULL DEFAULT '';
ALTER TABLE merchants ADD COLUMN default_redirect_url TEXT NOT NULL DEFAULT '';
