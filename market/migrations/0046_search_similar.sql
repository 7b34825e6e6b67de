-- Similar words learned from the listings (embedded backend): words used in the same kind of listings instead of
-- one another (침낭 and 슬리핑백), by the cosine of the words around them (market/search/related.py,
-- ``similar_words``). Learned again from the newest listings after `billi reindex` and every hour by one node (its
-- turn taken in `leases`); a narrow search's second pass reads its own words' similar ones.
CREATE TABLE search_similar (
    term     VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    similar  VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    score    FLOAT NOT NULL,
    PRIMARY KEY (term, similar)
) ENGINE=InnoDB;
