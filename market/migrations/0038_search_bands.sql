-- How many postings each (term, tier) list holds at each weight: a nationwide search plans its reading with them
-- (market/search/nationwide.py: the list that gets below its heaviest weight soonest is read first). Kept by the
-- indexer beside search_terms; a plan only — what is read decides the answer, so a count a moment behind costs
-- time, never a hit.
CREATE TABLE search_bands (
    term    VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    tier    TINYINT UNSIGNED NOT NULL,
    weight  SMALLINT UNSIGNED NOT NULL,
    docs    INT NOT NULL DEFAULT 0,
    PRIMARY KEY (term, tier, weight)
) ENGINE=InnoDB;

INSERT INTO search_bands (term, tier, weight, docs)
SELECT term, tier, weight, COUNT(*) FROM search_postings GROUP BY term, tier, weight;
