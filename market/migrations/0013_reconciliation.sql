-- Daily reconciliation of the platform account's bank statement against our transfers and ledger: one row per
-- day reconciled (so the scheduler runs each day once), with the differences found.
CREATE TABLE IF NOT EXISTS reconciliations (
    day          DATE NOT NULL PRIMARY KEY,
    differences  INT UNSIGNED NOT NULL,
    report       MEDIUMTEXT NOT NULL,
    ran_at       DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
-- suspense: a late bank answer contradicted what we recorded (we had it failed, the bank moved the money); the
-- money sits in the 'suspense' ledger account until an operator sorts it out.
ALTER TABLE transfers MODIFY state ENUM('pending','sending','unknown','done','failed','review','suspense')
    NOT NULL DEFAULT 'pending';
