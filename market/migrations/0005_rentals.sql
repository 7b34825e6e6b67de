-- Rentals and money: contracts with their history and evidence photos, linked bank accounts, bank
-- transfers (one row per bank_tran_id) and the double-entry escrow ledger.

CREATE TABLE contracts (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    item_id          BIGINT UNSIGNED NOT NULL,
    owner_id         BIGINT UNSIGNED NOT NULL,
    borrower_id      BIGINT UNSIGNED NOT NULL,
    room_id          BIGINT UNSIGNED NOT NULL,
    state            ENUM('REQUESTED','ACCEPTED','PAID','IN_USE','OVERDUE','RETURNED','CLAIMED','DISPUTED',
                          'SETTLED','DECLINED','CANCELLED','EXPIRED') NOT NULL,
    start_date       DATE NOT NULL,
    end_date         DATE NOT NULL,
    price_per_day    INT UNSIGNED NOT NULL,
    deposit          INT UNSIGNED NOT NULL,
    rent             INT UNSIGNED NOT NULL,
    fee              INT UNSIGNED NOT NULL,
    extra_rent       INT UNSIGNED NOT NULL DEFAULT 0,
    extra_fee        INT UNSIGNED NOT NULL DEFAULT 0,
    late_fee         INT UNSIGNED NOT NULL DEFAULT 0,
    claim_kind       ENUM('damage','lost') NULL,
    claim_amount     INT UNSIGNED NULL,
    claim_note       VARCHAR(500) NULL,
    resolution_note  VARCHAR(500) NULL,
    ext_end_date     DATE NULL,
    ext_rent         INT UNSIGNED NULL,
    ext_fee          INT UNSIGNED NULL,
    owner_handed_at  DATETIME(3) NULL,
    borrower_got_at  DATETIME(3) NULL,
    expires_at       DATETIME(3) NULL,
    returned_at      DATETIME(3) NULL,
    settled_at       DATETIME(3) NULL,
    reminders        VARCHAR(255) NOT NULL DEFAULT '',
    created_at       DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at       DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    KEY ix_contracts_item (item_id, state, start_date),
    KEY ix_contracts_state (state, expires_at),
    KEY ix_contracts_room (room_id, id),
    KEY ix_contracts_borrower (borrower_id, state),
    KEY ix_contracts_owner (owner_id, state),
    CONSTRAINT fk_contracts_item FOREIGN KEY (item_id) REFERENCES items (id),
    CONSTRAINT fk_contracts_owner FOREIGN KEY (owner_id) REFERENCES users (id),
    CONSTRAINT fk_contracts_borrower FOREIGN KEY (borrower_id) REFERENCES users (id),
    CONSTRAINT fk_contracts_room FOREIGN KEY (room_id) REFERENCES rooms (id),
    CONSTRAINT ck_contracts_dates CHECK (end_date >= start_date),
    CONSTRAINT ck_contracts_claim CHECK (claim_amount IS NULL OR claim_amount + late_fee <= deposit)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The contract's history; each row is also announced once in the deal room (announced_at).
CREATE TABLE contract_events (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    contract_id   BIGINT UNSIGNED NOT NULL,
    kind          VARCHAR(32) NOT NULL,
    actor_kind    ENUM('owner','borrower','system','operator') NOT NULL,
    actor_id      BIGINT UNSIGNED NULL,
    from_state    VARCHAR(12) NULL,
    to_state      VARCHAR(12) NOT NULL,
    data          TEXT NULL,
    created_at    DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    announced_at  DATETIME(3) NULL,
    KEY ix_contract_events_contract (contract_id, id),
    KEY ix_contract_events_unannounced (announced_at, id),
    CONSTRAINT fk_contract_events_contract FOREIGN KEY (contract_id) REFERENCES contracts (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Condition photos at hand-over and return, and claim evidence: timestamped, kept with the contract.
CREATE TABLE contract_photos (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    contract_id   BIGINT UNSIGNED NOT NULL,
    user_id       BIGINT UNSIGNED NOT NULL,
    stage         ENUM('handover','in_use','return','claim') NOT NULL,
    object_key    VARCHAR(255) NOT NULL,
    created_at    DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_contract_photos_key (contract_id, object_key),
    CONSTRAINT fk_contract_photos_contract FOREIGN KEY (contract_id) REFERENCES contracts (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A person's linked bank account (KFTC Open Banking); tokens are encrypted (AES-GCM, base64) before they get here.
CREATE TABLE bank_links (
    user_id            BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    user_seq_no        VARCHAR(20) NOT NULL,
    fintech_use_num    VARCHAR(32) NOT NULL,
    bank_name          VARCHAR(40) NOT NULL,
    account_masked     VARCHAR(40) NOT NULL,
    holder_name        VARCHAR(40) NOT NULL,
    access_token_enc   VARCHAR(2048) CHARACTER SET ascii NOT NULL,
    refresh_token_enc  VARCHAR(2048) CHARACTER SET ascii NOT NULL,
    token_expires_at   DATETIME(3) NOT NULL,
    created_at         DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at         DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    CONSTRAINT fk_bank_links_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Every bank transfer we ask for, written before the call: 'pending' (asked, no answer yet), 'unknown'
-- (the answer was lost: settle with the transfer result inquiry before anything else), 'done', 'failed'.
CREATE TABLE transfers (
    id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    bank_tran_id   CHAR(20) NOT NULL,
    purpose        VARCHAR(40) NOT NULL,
    contract_id    BIGINT UNSIGNED NULL,
    user_id        BIGINT UNSIGNED NOT NULL,
    direction      ENUM('withdraw','deposit') NOT NULL,
    amount         BIGINT UNSIGNED NOT NULL,
    state          ENUM('pending','unknown','done','failed') NOT NULL DEFAULT 'pending',
    tran_dtime     CHAR(14) NOT NULL,
    bank_tran_date CHAR(8) NULL,
    rsp_code       VARCHAR(8) NULL,
    bank_rsp_code  VARCHAR(8) NULL,
    message        VARCHAR(200) NULL,
    applied        TINYINT(1) NOT NULL DEFAULT 0,
    created_at     DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at     DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_transfers_bank_tran_id (bank_tran_id),
    KEY ix_transfers_purpose (purpose, state),
    KEY ix_transfers_state (state, updated_at),
    KEY ix_transfers_contract (contract_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Double-entry ledger: every movement is two rows (amount and -amount) with the same movement id.
-- Accounts: bank:<user> (money outside, at a person's bank), escrow:<contract>, payable:<user> (owed to a
-- person, paid out by a deposit transfer), fees (the platform's).
CREATE TABLE ledger (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    movement      VARCHAR(64) NOT NULL,
    contract_id   BIGINT UNSIGNED NULL,
    account       VARCHAR(40) NOT NULL,
    amount        BIGINT NOT NULL,
    memo          VARCHAR(40) NOT NULL,
    created_at    DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_ledger_movement (movement, account),
    KEY ix_ledger_account (account),
    KEY ix_ledger_contract (contract_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Leases for work only one node may do at a time (the scheduler).
CREATE TABLE leases (
    name        VARCHAR(40) NOT NULL PRIMARY KEY,
    holder      VARCHAR(64) NOT NULL,
    expires_at  DATETIME(3) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
