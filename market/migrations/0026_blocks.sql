-- Blocking (차단): the blocker hears nothing more from the blocked person — no new deal room on either one's items,
-- no rental request, no message in a deal room they share (both ways: the blocker unblocks to write again).
-- A contract already running goes on through its own steps. One row per (blocker, blocked); unblocking deletes it.
CREATE TABLE blocks (
    blocker_id  BIGINT UNSIGNED NOT NULL,
    blocked_id  BIGINT UNSIGNED NOT NULL,
    created_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (blocker_id, blocked_id),
    KEY ix_blocks_blocked (blocked_id, blocker_id),
    CONSTRAINT fk_blocks_blocker FOREIGN KEY (blocker_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT fk_blocks_blocked FOREIGN KEY (blocked_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
