-- The bigrams of the words the analyser may have misread (an unknown brand or loanword, a word read as a noun and
-- a particle), as tokens: a listing's postings for them (all in tier 0) are taken back from this column when the
-- listing changes or goes. See market/search/korean.py (word_grams). Rebuilt through the outbox.
ALTER TABLE search_docs ADD COLUMN gram_terms TEXT NOT NULL DEFAULT '';
INSERT INTO search_outbox (item_id) SELECT id FROM items;
