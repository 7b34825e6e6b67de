-- A person's own 동네, set in the assistant room (a 동 name typed, or the browser's location with their consent):
-- /주변 without a place and searches start from it. Only the 동's name and a point rounded to ~100 m are kept.
ALTER TABLE users ADD COLUMN home_place VARCHAR(40) NULL, ADD COLUMN home_lat DECIMAL(8, 5) NULL,
    ADD COLUMN home_lng DECIMAL(8, 5) NULL;
