-- Nationwide search (no point) reads each term's postings best first instead of all of them: a list's postings
-- by weight, then by listing number, both descending (market/search/nationwide.py). The primary key's columns
-- (the map cell among them) ride along, so a read needs no row lookup; the other terms are completed through
-- ix_search_postings_probe as near a point.
ALTER TABLE search_postings ADD INDEX ix_search_postings_top (term, tier, weight, item_id);
