-- A search with a filter besides place (category, price, deposit, condition, dates, status) checks each posting's
-- document as it reads the posting. Through the listing number's unique key that is two lookups, the second into
-- the wide row with its texts; this narrow index holds every column the filters read, so one lookup into a
-- small, hot index does (market/geo.py filters_for; the embedded backend forces it).
ALTER TABLE search_docs ADD INDEX ix_search_docs_filters (item_id, status, cat1_id, cat2_id, cat3_id, price_per_day,
    deposit, item_condition, available_from, available_until);
