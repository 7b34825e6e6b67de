-- transfers.fintech_use_num: for a withdrawal, the account it was opened against (the one its owner confirmed);
-- if the link has changed by the time it is sent, it is not sent. (IF NOT EXISTS: an early copy of 0008 had it.)
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS fintech_use_num VARCHAR(32) NULL AFTER user_id;
