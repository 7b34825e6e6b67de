-- Reports (신고) of a person or a listing, for the operators' queue (billi reports). One open report per reporter
-- and target (open_key is NULL once resolved, so the same person may report the same target again later).
CREATE TABLE reports (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    reporter_id      BIGINT UNSIGNED NOT NULL,
    target_kind      ENUM('person','item') NOT NULL,
    target_id        BIGINT UNSIGNED NOT NULL,
    reason           ENUM('fraud','inappropriate','prohibited','spam','other') NOT NULL,
    note             VARCHAR(500) NOT NULL DEFAULT '',
    status           ENUM('open','resolved') NOT NULL DEFAULT 'open',
    created_at       DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    resolved_at      DATETIME(3) NULL,
    resolution_note  VARCHAR(500) NULL,
    open_key         TINYINT AS (IF(status = 'open', 1, NULL)) PERSISTENT,
    UNIQUE KEY uq_reports_open (reporter_id, target_kind, target_id, open_key),
    KEY ix_reports_queue (status, target_kind, target_id),
    CONSTRAINT fk_reports_reporter FOREIGN KEY (reporter_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
