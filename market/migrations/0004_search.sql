-- Keyword search (embedded backend): an outbox written in the same transaction as every item change, and one
-- search document per item with its Korean-analysed terms in FULLTEXT indexes next to the filter fields.
--
-- Terms are stored encoded (see market/search.py: a letter and the term's UTF-8 in hex), so InnoDB's word
-- splitting, its minimum token size and its stopword list never touch Korean text.

CREATE TABLE search_outbox (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    item_id     BIGINT UNSIGNED NOT NULL,
    created_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    KEY ix_search_outbox_item (item_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE search_docs (
    FTS_DOC_ID       BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    item_id          BIGINT UNSIGNED NOT NULL,
    -- all terms plus the item's map cell and categories: what a query must match (the WHERE)
    match_terms      MEDIUMTEXT NOT NULL,
    -- the parts weighed separately for ranking
    title_terms      TEXT NOT NULL,
    body_terms       MEDIUMTEXT NOT NULL,
    related_terms    TEXT NOT NULL,
    title            VARCHAR(60) NOT NULL,
    location         POINT REF_SYSTEM_ID=4326 NOT NULL,
    cat1_id          INT UNSIGNED NOT NULL,
    cat2_id          INT UNSIGNED NOT NULL,
    cat3_id          INT UNSIGNED NOT NULL,
    price_per_day    INT UNSIGNED NOT NULL,
    deposit          INT UNSIGNED NOT NULL,
    item_condition   ENUM('상','중','하') NOT NULL,
    available_from   DATE NOT NULL,
    available_until  DATE NULL,
    status           ENUM('available','reserved','rented','hidden','deleted') NOT NULL,
    owner_rating     DECIMAL(3,2) NULL,
    created_at       DATETIME(3) NOT NULL,
    PRIMARY KEY (FTS_DOC_ID),
    UNIQUE KEY uq_search_docs_item (item_id),
    KEY ix_search_docs_title (title),
    FULLTEXT KEY ft_search_match (match_terms),
    FULLTEXT KEY ft_search_title (title_terms),
    FULLTEXT KEY ft_search_body (body_terms),
    FULLTEXT KEY ft_search_related (related_terms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Every item present when search arrived is indexed by the first indexer run.
INSERT INTO search_outbox (item_id) SELECT id FROM items;

-- How many listings have each term: for "did you mean" (near spellings of a term that finds nothing).
CREATE TABLE search_vocab (
    term  VARCHAR(40) NOT NULL PRIMARY KEY,
    df    INT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
