-- Messages for one member of a room, and how far a bank link is trusted.
--
-- messages.audience_id: NULL = every member sees it; else only that member does (the others are sent a
-- placeholder {seq, hidden: true}, so the room's seq stays gap-free for everybody).
-- room_members.hidden_unread: how many messages after the member's read position are hidden from them
-- (unread = last_seq - last_read_seq - hidden_unread).
ALTER TABLE messages ADD COLUMN audience_id BIGINT UNSIGNED NULL AFTER sender_kind;
ALTER TABLE messages ADD KEY ix_messages_audience (room_id, audience_id, seq);
ALTER TABLE room_members ADD COLUMN hidden_unread INT UNSIGNED NOT NULL DEFAULT 0 AFTER last_read_seq;

-- bank_links.verified_at: when the bank's redirect came back in a request carrying the owner's own session.
-- Links made before that rule have NULL here and are listed by `billi billipay-links --unverified`.
-- bank_links.confirmed_at: when the person confirmed this account (bank, number, holder) before its first
-- payment; NULL means the next payment first shows them a private confirmation card.
ALTER TABLE bank_links ADD COLUMN verified_at DATETIME(3) NULL AFTER token_expires_at;
ALTER TABLE bank_links ADD COLUMN confirmed_at DATETIME(3) NULL AFTER verified_at;
-- bank_links.bank_user_name: the name the bank gives for the person who consented (user/me's user_name); a
-- holder name that differs from it is pointed out on the confirmation card.
ALTER TABLE bank_links ADD COLUMN bank_user_name VARCHAR(40) NULL AFTER holder_name;
