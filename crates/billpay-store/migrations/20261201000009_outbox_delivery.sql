-- Delivery of the outbox by email. Each row is a queue entry of its own, leased like a job:
--   queued  -> sending (leased to one sender, attempts + 1, committed before the SMTP
--              conversation starts)
--   sending -> sent (sent_at), queued again (a transient failure, at next_attempt_at),
--              or failed (a permanent reject, attempts used up, or a sender that stopped
--              mid-conversation: see ARCHITECTURE.md, "at most once").
-- Rows of channels without a sender yet (sms.*) stay queued.
ALTER TABLE outbox ADD COLUMN status TEXT NOT NULL DEFAULT 'queued';
ALTER TABLE outbox ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
ALTER TABLE outbox ADD COLUMN lease_until BIGINT;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
ALTER TABLE outbox ADD COLUMN finished_at BIGINT;

UPDATE outbox SET status = 'sent', finished_at = sent_at WHERE sent_at IS NOT NULL;
-- Messages written before delivery existed are not sent on upgrade: they may be months old
-- (reminders of bills since paid, notices since resolved). An operator can still send one
-- with `billpay outbox retry ID`.
UPDATE outbox SET status = 'failed', finished_at = created_at,
    last_error = 'written before email delivery existed: not sent on upgrade (billpay outbox retry ID sends it)'
    WHERE sent_at IS NULL AND kind LIKE 'email.%';

CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
