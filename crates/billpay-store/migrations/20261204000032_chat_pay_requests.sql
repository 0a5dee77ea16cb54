-- A secure pay request a representative sends into a conversation: the customer opens it and
-- pays in billpay's own pay form (card or bank details never pass through the chat or the
-- desk); the representative sees only the outcome and the masked method.
-- `status`: open, paid, declined (open again for another try), pending (processor answer in
-- doubt). `result` is the words shown to both sides.
CREATE TABLE chat_pay_requests (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    staff_id        TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL,
    payment_id      TEXT,
    result          TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX chat_pay_requests_conversation ON chat_pay_requests (conversation_id);
