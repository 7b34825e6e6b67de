-- Deleted accounts: the row stays (contracts, reviews and messages point at it) without its personal data, named
-- "탈퇴한 이웃" like every other former neighbour. Nicknames stay unique among living accounts only.
ALTER TABLE users ADD COLUMN IF NOT EXISTS deleted_at DATETIME(3) NULL AFTER locale;
ALTER TABLE users ADD COLUMN IF NOT EXISTS live_nickname VARCHAR(20) AS (IF(deleted_at IS NULL, nickname, NULL)) PERSISTENT;
ALTER TABLE users DROP KEY uq_users_nickname, ADD UNIQUE KEY uq_users_nickname (live_nickname);
