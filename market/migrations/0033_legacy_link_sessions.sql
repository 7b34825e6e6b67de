-- Naver links made before 0031 recorded no session, and NULL means "the link the account was made with", which no
-- password change or reset unlinks. One made more than a minute after its account was linked later, from some
-- session: it is marked 'legacy', which the unlink rules take as a link from another session.
UPDATE login_links l JOIN users u ON u.id = l.user_id SET l.linked_in_session = 'legacy'
 WHERE l.linked_in_session IS NULL AND l.created_at > u.created_at + INTERVAL 60 SECOND;
