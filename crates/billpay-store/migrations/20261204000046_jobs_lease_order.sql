-- Leases read due jobs in (run_at, id) order, of one kind or of any: with these indexes that
-- order comes from the index and a lease reads about as many rows as it takes, instead of
-- sorting every due job (a million at once in an AutoPay run) for each lease.
DROP INDEX jobs_kind;
CREATE INDEX jobs_kind_due ON jobs(kind, status, run_at, id);
DROP INDEX jobs_due;
CREATE INDEX jobs_due ON jobs(status, run_at, id);
