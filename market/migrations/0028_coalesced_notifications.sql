-- Flood limits: a burst of new inquiries an owner has not read yet is one notification ("새 문의 3건"), not a buzz
-- per deal room. coalesced: how many happenings the notification stands for (1 for every other kind).
ALTER TABLE notifications
  ADD COLUMN coalesced INT UNSIGNED NOT NULL DEFAULT 1 AFTER text;
