-- The webhook relay reads payment movements from the ledger (payments, refunds, returns) and
-- makes one account event of each, `evt_<journal entry id>`; this is how far it has read.
-- A database upgraded to this version starts at its newest entry (history is not sent to the
-- biller's endpoints); a new one from the beginning.
CREATE TABLE event_relays (
    name        TEXT PRIMARY KEY,
    cursor_at   BIGINT NOT NULL
);
INSERT INTO event_relays (name, cursor_at)
SELECT 'ledger', COALESCE(MAX(created_at), 0) FROM journal_entries;
