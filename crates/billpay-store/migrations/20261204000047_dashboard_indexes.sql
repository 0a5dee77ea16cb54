-- The operator dashboard groups payments, ledger entries and chats by day: each reads a range
-- of instants.
CREATE INDEX journal_entries_created ON journal_entries(created_at);
CREATE INDEX payments_created ON payments(created_at);
CREATE INDEX chat_conversations_created ON chat_conversations(created_at);
