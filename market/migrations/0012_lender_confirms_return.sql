-- The lender confirms the return: the borrower's 반납 완료 records when they say they gave it back
-- (return_declared_at) and the owner confirms (or objects) — only then is the contract RETURNED.
ALTER TABLE contracts ADD COLUMN IF NOT EXISTS return_declared_at DATETIME(3) NULL AFTER borrower_got_at;
-- An objection to a one-sided hand-over ("아직 못 받았어요"): the one-sided confirmation is withdrawn and the
-- no-show clock counts again from here.
ALTER TABLE contracts ADD COLUMN IF NOT EXISTS handover_objected_at DATETIME(3) NULL AFTER return_declared_at;
-- A transfer's kind (pay, ext, payout, refund) as a column of its own, and what it pays for: an extension's
-- charge carries its end date, rent and fee, so a late landing applies exactly what was paid for.
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS kind VARCHAR(16) NULL AFTER purpose;
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS pays_for VARCHAR(255) NULL AFTER amount;
UPDATE transfers SET kind = SUBSTRING_INDEX(purpose, ':', 1) WHERE kind IS NULL;
