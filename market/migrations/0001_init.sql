-- Accounts, categories, items, photos and wishes: the ground of the market.

CREATE TABLE users (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email            VARCHAR(254) NULL,
    nickname         VARCHAR(20)  NOT NULL,
    password_hash    VARCHAR(255) NULL,
    profile_photo_key VARCHAR(255) NULL,
    locale           ENUM('ko','en') NOT NULL DEFAULT 'ko',
    created_at       DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at       DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_users_email (email),
    UNIQUE KEY uq_users_nickname (nickname)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE categories (
    id         INT UNSIGNED NOT NULL PRIMARY KEY,
    parent_id  INT UNSIGNED NULL,
    level      TINYINT UNSIGNED NOT NULL,
    name       VARCHAR(40) NOT NULL,
    position   SMALLINT UNSIGNED NOT NULL DEFAULT 0,
    UNIQUE KEY uq_categories_parent_name (parent_id, name),
    CONSTRAINT fk_categories_parent FOREIGN KEY (parent_id) REFERENCES categories (id),
    CONSTRAINT ck_categories_level CHECK (level BETWEEN 1 AND 3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE items (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    owner_id         BIGINT UNSIGNED NOT NULL,
    title            VARCHAR(60) NOT NULL,
    description      TEXT NOT NULL,
    category_id      INT UNSIGNED NOT NULL,
    cat1_id          INT UNSIGNED NOT NULL,
    cat2_id          INT UNSIGNED NOT NULL,
    cat3_id          INT UNSIGNED NOT NULL,
    price_per_day    INT UNSIGNED NOT NULL,
    deposit          INT UNSIGNED NOT NULL,
    item_condition   ENUM('상','중','하') NOT NULL,
    location         POINT REF_SYSTEM_ID=4326 NOT NULL,
    place_name       VARCHAR(60) NOT NULL DEFAULT '',
    available_from   DATE NOT NULL,
    available_until  DATE NULL,
    status           ENUM('available','reserved','rented','hidden','deleted') NOT NULL DEFAULT 'available',
    view_count       INT UNSIGNED NOT NULL DEFAULT 0,
    wish_count       INT UNSIGNED NOT NULL DEFAULT 0,
    created_at       DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at       DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    SPATIAL INDEX sx_items_location (location),
    KEY ix_items_owner (owner_id, status, id),
    KEY ix_items_cat1 (cat1_id),
    KEY ix_items_cat2 (cat2_id),
    KEY ix_items_cat3 (cat3_id),
    CONSTRAINT fk_items_owner FOREIGN KEY (owner_id) REFERENCES users (id),
    CONSTRAINT fk_items_category FOREIGN KEY (category_id) REFERENCES categories (id),
    CONSTRAINT ck_items_dates CHECK (available_until IS NULL OR available_until >= available_from)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE item_photos (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    item_id       BIGINT UNSIGNED NOT NULL,
    position      TINYINT UNSIGNED NOT NULL,
    object_key    VARCHAR(255) NOT NULL,
    thumb_key     VARCHAR(255) NOT NULL,
    content_type  VARCHAR(40) NOT NULL,
    width         SMALLINT UNSIGNED NOT NULL,
    height        SMALLINT UNSIGNED NOT NULL,
    bytes         INT UNSIGNED NOT NULL,
    created_at    DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    KEY ix_item_photos_item (item_id, position),
    CONSTRAINT fk_item_photos_item FOREIGN KEY (item_id) REFERENCES items (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE wishes (
    user_id     BIGINT UNSIGNED NOT NULL,
    item_id     BIGINT UNSIGNED NOT NULL,
    created_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (user_id, item_id),
    KEY ix_wishes_item (item_id),
    CONSTRAINT fk_wishes_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT fk_wishes_item FOREIGN KEY (item_id) REFERENCES items (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
