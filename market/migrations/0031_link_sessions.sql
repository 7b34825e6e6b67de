-- The session a login link (Naver) was added from, as its token's SHA-256; NULL for a link the account was made
-- with. A password change unlinks every link added from another session, a reset every link added from any
-- session: a link added with a stolen session does not outlive the owner taking the account back.
ALTER TABLE login_links ADD COLUMN linked_in_session CHAR(64) NULL AFTER user_id;
