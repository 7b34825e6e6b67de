-- Related words learned from the listings (embedded backend): how many listings have both a and b among the
-- terms of their title and their category (and the broader terms of those). Kept in step by the indexer, one
-- listing at a time (+1 for a pair a listing gains, -1 for one it loses), and rebuilt by `billi reindex`. A
-- search reads the pairs of its own terms to find the words listings use with them (see market/search/related.py).
-- Both orders of a pair are stored, so one key range gives a term's companions.
CREATE TABLE search_pairs (
    a  VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    b  VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    n  INT NOT NULL DEFAULT 0,
    PRIMARY KEY (a, b)
) ENGINE=InnoDB;
