-- The daily overdue reminder keeps only the last day it was sent. It used to append `overdue_YYYY-MM-DD,` to
-- contracts.reminders every day, which overflowed VARCHAR(255) on the 14th overdue day and stopped every
-- scheduler round. contracts.reminders keeps only the one-off marks (starts_tomorrow, due_tomorrow, due_today).
ALTER TABLE contracts ADD COLUMN overdue_reminded_on DATE NULL AFTER reminders;
UPDATE contracts
   SET overdue_reminded_on = STR_TO_DATE(SUBSTRING_INDEX(reminders, 'overdue_', -1), '%Y-%m-%d'),
       reminders = TRIM(BOTH ',' FROM SUBSTRING_INDEX(reminders, 'overdue_', 1))
 WHERE reminders LIKE '%overdue\_%';
