-- Location privacy. Everyone but an item's owner is shown its public place: the centre of its cell on a ~250 m
-- grid (0.00225° of latitude × 0.0028° of longitude, the grid of market/public_place.py) and the 동 of that centre.
-- Radius searches and distances run on the public point, through its own SPATIAL index, so no number of searches
-- from different places narrows an item down below its cell. The exact point stays for the owner.
-- dong: NULL until computed (items listed before this migration get theirs when first read), '' where none.
ALTER TABLE items
  ADD COLUMN public_location POINT REF_SYSTEM_ID=4326 NULL AFTER location,
  ADD COLUMN dong VARCHAR(40) NULL AFTER place_name;
UPDATE items
   SET public_location = ST_GeomFromText(CONCAT('POINT(',
         ROUND((FLOOR(ST_X(location) / 0.0028) + 0.5) * 0.0028, 7), ' ',
         ROUND((FLOOR(ST_Y(location) / 0.00225) + 0.5) * 0.00225, 7), ')'), 4326),
       updated_at = updated_at;
-- Nothing searches the exact point any more: its index goes, the public point's comes.
ALTER TABLE items
  MODIFY public_location POINT REF_SYSTEM_ID=4326 NOT NULL,
  ADD SPATIAL INDEX sx_items_public_location (public_location),
  DROP INDEX sx_items_location;
-- The search index holds points too: the indexer re-reads every listed item and files it under its public point.
INSERT INTO search_outbox (item_id) SELECT id FROM items WHERE status IN ('available', 'reserved', 'rented');
