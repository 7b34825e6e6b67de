-- Buttons retire (DESIGN §3): a bot message whose buttons a later step made pointless is edited in place.
-- live_buttons: which messages of a room still have live buttons, by topic (a contract's steps, one person's
-- review, a bank-link prompt …), so a later step can retire them all at once.
CREATE TABLE IF NOT EXISTS live_buttons (
  room_id BIGINT UNSIGNED NOT NULL,
  topic VARCHAR(64) NOT NULL,
  seq BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (room_id, topic, seq)
) ENGINE=InnoDB;
-- message_edits: the edited body of a message, kept also after the message moves to an archive segment (whose
-- objects are never rewritten); reading archived messages applies it.
CREATE TABLE IF NOT EXISTS message_edits (
  room_id BIGINT UNSIGNED NOT NULL,
  seq BIGINT UNSIGNED NOT NULL,
  body JSON NOT NULL,
  edited_at DATETIME(3) NOT NULL,
  PRIMARY KEY (room_id, seq)
) ENGINE=InnoDB;
