-- Chat: rooms (one deal room per item and borrower, one assistant room per user), members with read
-- positions, messages with a per-room gap-free seq, and archived segments of old messages in S3.

CREATE TABLE rooms (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind             ENUM('deal','assistant') NOT NULL,
    unique_key       VARCHAR(64) NOT NULL,
    item_id          BIGINT UNSIGNED NULL,
    owner_id         BIGINT UNSIGNED NOT NULL,
    borrower_id      BIGINT UNSIGNED NULL,
    last_seq         BIGINT UNSIGNED NOT NULL DEFAULT 0,
    last_message_at  DATETIME(3) NULL,
    created_at       DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_rooms_key (unique_key),
    KEY ix_rooms_item (item_id),
    CONSTRAINT fk_rooms_item FOREIGN KEY (item_id) REFERENCES items (id),
    CONSTRAINT fk_rooms_owner FOREIGN KEY (owner_id) REFERENCES users (id),
    CONSTRAINT fk_rooms_borrower FOREIGN KEY (borrower_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE room_members (
    room_id        BIGINT UNSIGNED NOT NULL,
    user_id        BIGINT UNSIGNED NOT NULL,
    role           ENUM('owner','borrower','user') NOT NULL DEFAULT 'user',
    last_read_seq  BIGINT UNSIGNED NOT NULL DEFAULT 0,
    joined_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (room_id, user_id),
    KEY ix_room_members_user (user_id),
    CONSTRAINT fk_room_members_room FOREIGN KEY (room_id) REFERENCES rooms (id) ON DELETE CASCADE,
    CONSTRAINT fk_room_members_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE messages (
    room_id        BIGINT UNSIGNED NOT NULL,
    seq            BIGINT UNSIGNED NOT NULL,
    sender_id      BIGINT UNSIGNED NULL,
    sender_kind    ENUM('user','bot','system') NOT NULL,
    client_msg_id  VARCHAR(64) NULL,
    text           TEXT NOT NULL,
    body           TEXT NULL,
    created_at     DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (room_id, seq),
    UNIQUE KEY uq_messages_client (room_id, sender_id, client_msg_id),
    KEY ix_messages_created (created_at),
    CONSTRAINT fk_messages_room FOREIGN KEY (room_id) REFERENCES rooms (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE archive_segments (
    room_id        BIGINT UNSIGNED NOT NULL,
    from_seq       BIGINT UNSIGNED NOT NULL,
    to_seq         BIGINT UNSIGNED NOT NULL,
    object_key     VARCHAR(255) NOT NULL,
    message_count  INT UNSIGNED NOT NULL,
    bytes          INT UNSIGNED NOT NULL,
    created_at     DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (room_id, from_seq),
    CONSTRAINT fk_archive_room FOREIGN KEY (room_id) REFERENCES rooms (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
