-- Recording a payment's outcome completes the idempotency keys still open on it. Without this
-- index that lookup scanned every key kept (72 hours' worth) inside the writer's transaction.
CREATE INDEX idempotency_started_resource ON idempotency_keys(resource_id) WHERE state = 'started';
