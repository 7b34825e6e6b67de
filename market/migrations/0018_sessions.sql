-- Sessions live in MariaDB (the system of record); Redis only caches them. A Redis restart or flush logs nobody
-- out, and a revoked session stays refused whatever Redis holds. Only the token's SHA-256 is stored.
CREATE TABLE IF NOT EXISTS sessions (
  token_hash CHAR(64) NOT NULL PRIMARY KEY,
  user_id BIGINT UNSIGNED NOT NULL,
  created_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  revoked_at DATETIME(3) NULL,
  KEY ix_sessions_user (user_id),
  KEY ix_sessions_expiry (expires_at)
) ENGINE=InnoDB;
