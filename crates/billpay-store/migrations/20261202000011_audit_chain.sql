-- A tamper-evident audit log: every record is sealed into a hash chain shortly after it is
-- written (by the job runner of every serve and worker). `seq` numbers the chain from 1;
-- `hash` = SHA-256 over the previous record's hash and this record's fields; `audit_chain`
-- holds the chain's head, so deleting the newest records is detected too. Records not yet
-- sealed have seq NULL.

ALTER TABLE audit_log ADD COLUMN seq BIGINT;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX audit_log_seq ON audit_log(seq);
CREATE INDEX audit_log_unsealed ON audit_log(at, id) WHERE seq IS NULL;

CREATE TABLE audit_chain (
    id      BIGINT PRIMARY KEY,
    seq     BIGINT NOT NULL,
    hash    TEXT NOT NULL
);
INSERT INTO audit_chain (id, seq, hash) VALUES (1, 0, 'genesis');
