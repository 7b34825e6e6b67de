-- The transfer life cycle: pending (queued) → sending (our call is open; nobody else touches it) → unknown (no
-- final answer: inquired with backoff) → done | failed, or review (still unknown past the horizon: an operator
-- decides; never silently failed).
ALTER TABLE transfers MODIFY state ENUM('pending','sending','unknown','done','failed','review') NOT NULL DEFAULT 'pending';
ALTER TABLE transfers ADD COLUMN sent_at DATETIME(3) NULL AFTER tran_dtime;
ALTER TABLE transfers ADD COLUMN inquiries SMALLINT UNSIGNED NOT NULL DEFAULT 0 AFTER sent_at;
ALTER TABLE transfers ADD COLUMN next_inquiry_at DATETIME(3) NULL AFTER inquiries;
-- Transfers left 'unknown' by earlier code were sent (or at least claimed) already.
UPDATE transfers SET sent_at = updated_at WHERE state = 'unknown';
