-- A contested hand-over (one side confirmed, the other said "아직 못 받았어요") waits for an operator as a dispute.
ALTER TABLE contracts MODIFY claim_kind ENUM('damage','lost','handover') NULL;
