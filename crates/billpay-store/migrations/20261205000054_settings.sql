-- Settings changed in the operator console: one row per saved version, numbered from 1. A
-- version holds every console setting that differs from the configuration file (`overrides`,
-- a JSON object of setting name to value), who saved it, when and why, and what it changed
-- (`changes`, a JSON list of [name, before, after]). The newest version is in force on every
-- instance; rows are never updated or deleted.
CREATE TABLE settings_versions (
    version BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    staff_id TEXT NOT NULL,
    staff_name TEXT NOT NULL,
    reason TEXT NOT NULL,
    overrides TEXT NOT NULL,
    changes TEXT NOT NULL
);
