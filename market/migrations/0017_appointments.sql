-- 약속 잡기: after payment either person proposes a time and place for the hand-over; the other agrees or proposes
-- another. The proposal waiting for an answer and the agreed appointment live on the contract row (the machine's
-- edges propose_appointment / agree_appointment set them); reminders and the no-show rule use the agreed time.
ALTER TABLE contracts
  ADD COLUMN IF NOT EXISTS appt_proposed_by BIGINT UNSIGNED NULL,
  ADD COLUMN IF NOT EXISTS appt_proposed_at DATETIME NULL,
  ADD COLUMN IF NOT EXISTS appt_proposed_place VARCHAR(100) NULL,
  ADD COLUMN IF NOT EXISTS appointment_at DATETIME NULL,
  ADD COLUMN IF NOT EXISTS appointment_place VARCHAR(100) NULL;
