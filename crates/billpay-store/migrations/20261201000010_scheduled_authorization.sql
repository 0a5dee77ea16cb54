-- A scheduled bank debit taken by phone carries the NACHA TEL authorization the caller
-- consented to (the text read to them, and the call it was given on); it is stored with the
-- debit when the payment is made.
ALTER TABLE scheduled_payments ADD COLUMN authorization_text TEXT;
ALTER TABLE scheduled_payments ADD COLUMN authorization_call_sid TEXT;
