-- Live chat: conversations between a customer (a portal session, guest or signed in), the bot
-- and the representatives on the agent desk.
-- `state`: bot (the bot answers), queued (waiting for a representative), assigned (a
-- representative has it), closed. `account_id` is the account the customer verified (number
-- and ZIP, or their sign-in). `last_seq` numbers the messages: each new message takes
-- last_seq + 1 in the transaction that stores it, so a reconnecting reader asks for "after n".
CREATE TABLE chat_conversations (
    id              TEXT PRIMARY KEY,
    account_id      TEXT,
    account_number  TEXT,
    customer_name   TEXT NOT NULL,
    state           TEXT NOT NULL,
    agent_id        TEXT,
    queued_at       BIGINT,
    last_seq        BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX chat_conversations_state ON chat_conversations (state, queued_at);
CREATE INDEX chat_conversations_agent ON chat_conversations (agent_id, state);

-- One message. `sender`: customer, bot, agent, system, or note (an internal note only staff
-- see). `link` is a path on this site the message offers as a button (the pay form).
-- `body` is stored only after every card number in it is masked to its last four
-- (PCI DSS 3.3.1/3.4.1): the full number never reaches this table.
CREATE TABLE chat_messages (
    conversation_id TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    sender          TEXT NOT NULL,
    author          TEXT,
    body            TEXT NOT NULL,
    link            TEXT,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
