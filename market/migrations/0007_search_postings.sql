-- Keyword search at scale (embedded backend): our own inverted index, read near the searcher.
--
-- search_postings holds one row per (term, listing): where the term appears ("tier" 1 = in the title, 0 = only
-- in the description or the related terms), its weight in that listing, the listing's map cell and point. The
-- primary key puts a term's title postings together, cell after cell in row-major order, so the postings of one
-- term inside a circle are a few short key ranges (one per row of cells the circle crosses) and a search reads
-- only those. See market/search.py for how the ranges, the weights and the ranking are made.
--
-- It replaces InnoDB's FULLTEXT for matching and ranking: a FULLTEXT query reads a term's whole posting list
-- across the country, however small the radius. The title FULLTEXT index stays for title completion.

CREATE TABLE search_postings (
    term     VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    tier     TINYINT UNSIGNED NOT NULL,
    cell     INT UNSIGNED NOT NULL,
    item_id  BIGINT UNSIGNED NOT NULL,
    weight   SMALLINT UNSIGNED NOT NULL,  -- in half points: a title mention 6, a description mention 2, related 1
    lat      DOUBLE NOT NULL,
    lng      DOUBLE NOT NULL,
    PRIMARY KEY (term, tier, cell, item_id),
    -- A listing's posting for a term, whatever the tier, in one lookup (completing a listing's score).
    KEY ix_search_postings_probe (term, cell, item_id, weight)
) ENGINE=InnoDB;

-- How many listings have each term anywhere (title, description or related terms): the terms' rarity (IDF);
-- and the largest weight the term has had in a title (top1) and elsewhere (top0). The maxima only grow: they
-- are upper bounds, which is all the search's early stop needs.
CREATE TABLE search_terms (
    term  VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    docs  INT NOT NULL DEFAULT 0,
    top1  SMALLINT UNSIGNED NOT NULL DEFAULT 0,
    top0  SMALLINT UNSIGNED NOT NULL DEFAULT 0
) ENGINE=InnoDB;

-- How many listings are indexed (one row).
CREATE TABLE search_stats (
    id    TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    docs  BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB;
INSERT INTO search_stats (id, docs) VALUES (1, 0);

ALTER TABLE search_docs
    DROP INDEX ft_search_match,
    DROP INDEX ft_search_body,
    DROP INDEX ft_search_related,
    DROP COLUMN match_terms,
    ADD COLUMN cell INT UNSIGNED NOT NULL DEFAULT 0 AFTER location;

-- Rebuild every document through the outbox, postings included.
DELETE FROM search_docs;
DELETE FROM search_vocab;
INSERT INTO search_outbox (item_id) SELECT id FROM items;
