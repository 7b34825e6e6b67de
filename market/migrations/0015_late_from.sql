-- An operator who decides, after the rental's end date, that a contested hand-over did happen waives the late
-- fees for the days spent waiting on them: late fees count from late_from (when set) instead of the end date.
ALTER TABLE contracts ADD COLUMN IF NOT EXISTS late_from DATE NULL AFTER end_date;
