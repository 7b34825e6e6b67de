-- A bank link dropped when its account was deleted: our tokens for it are gone at once, but the bank offers us no
-- call to revoke its side (the open-banking user's consent), so the fact is kept here for an operator to close at
-- the bank; nothing else of the person is.
CREATE TABLE bank_link_drops (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id      BIGINT UNSIGNED NOT NULL,
    user_seq_no  VARCHAR(20) NOT NULL,
    dropped_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    closed_at    DATETIME(3) NULL,
    KEY ix_bank_link_drops_open (closed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
