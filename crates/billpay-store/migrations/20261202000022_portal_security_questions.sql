-- Security questions: the recovery path when a sign-in code cannot be received. The answer is
-- stored only as an argon2id hash of its normalized form (lower case, no spaces).
CREATE TABLE portal_security_answers (
    customer_id  TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    question     TEXT NOT NULL,
    answer_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (customer_id, seq)
);
