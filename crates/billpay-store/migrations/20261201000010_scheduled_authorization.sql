-- A scheduled bank debit taken by phone carries the NACHA TEL authorization the caller
-- consented to (the text read to them, the call it was given on, and when, in microseconds);
-- it is stored with the debit when the payment is made.
ALTER TABLE scheduled_payments ADD COLUMN authorization_text TEXT;
ALTER TABLE scheduled_payments ADD COLUMN authorization_call_sid TEXT;
ALTER TABLE scheduled_payments ADD COLUMN authorization_at BIGINT;
