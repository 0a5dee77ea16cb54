-- When the assistant first handed a conversation to a person. `queued_at` is cleared when a
-- representative takes it; this stays, so the dashboard can measure the wait and the hand-off
-- rate of conversations already answered.
ALTER TABLE chat_conversations ADD COLUMN handed_over_at BIGINT;
