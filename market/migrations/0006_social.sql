-- Social: Naver login links, reviews (double-blind) with one reply, notifications and muted kinds.

CREATE TABLE login_links (
    provider    ENUM('naver') NOT NULL,
    subject     VARCHAR(128) NOT NULL,
    user_id     BIGINT UNSIGNED NOT NULL,
    created_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (provider, subject),
    UNIQUE KEY uq_login_links_user (user_id, provider),
    CONSTRAINT fk_login_links_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE reviews (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    contract_id     BIGINT UNSIGNED NOT NULL,
    author_id       BIGINT UNSIGNED NOT NULL,
    about           ENUM('owner','borrower','item') NOT NULL,
    target_user_id  BIGINT UNSIGNED NULL,
    item_id         BIGINT UNSIGNED NOT NULL,
    stars           TINYINT UNSIGNED NOT NULL,
    text            VARCHAR(1000) NOT NULL DEFAULT '',
    reply           VARCHAR(1000) NULL,
    replied_at      DATETIME(3) NULL,
    created_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_reviews_one (contract_id, about),
    KEY ix_reviews_target (target_user_id, id),
    KEY ix_reviews_item (item_id, id),
    KEY ix_reviews_author (author_id, id),
    CONSTRAINT fk_reviews_contract FOREIGN KEY (contract_id) REFERENCES contracts (id),
    CONSTRAINT ck_reviews_stars CHECK (stars BETWEEN 1 AND 5)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE notifications (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id      BIGINT UNSIGNED NOT NULL,
    kind         VARCHAR(32) NOT NULL,
    room_id      BIGINT UNSIGNED NULL,
    contract_id  BIGINT UNSIGNED NULL,
    item_id      BIGINT UNSIGNED NULL,
    dedupe       VARCHAR(64) NULL,
    text         VARCHAR(300) NOT NULL,
    created_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    read_at      DATETIME(3) NULL,
    UNIQUE KEY uq_notifications_dedupe (user_id, dedupe),
    KEY ix_notifications_user (user_id, id),
    CONSTRAINT fk_notifications_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE notification_mutes (
    user_id  BIGINT UNSIGNED NOT NULL,
    kind     VARCHAR(32) NOT NULL,
    PRIMARY KEY (user_id, kind),
    CONSTRAINT fk_notification_mutes_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
