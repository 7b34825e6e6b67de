-- A session may be made only against what was checked: a log-in reads auth_epoch with the password hash, and its
-- session is inserted only if auth_epoch is still that (and the account not deleted). Every revocation of a
-- person's sessions (password change or reset, log out everywhere, deletion) moves it on in the same
-- transaction, so a log-in that checked the old password just before cannot slip a session in after.
ALTER TABLE users ADD COLUMN auth_epoch INT UNSIGNED NOT NULL DEFAULT 0 AFTER password_hash;
