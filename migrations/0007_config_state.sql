-- 0007: the configuration each host last started a service with, so that a
-- change between two starts is recorded in the audit log (appliance/lifecycle.c).
-- Per setting, a keyed hash of its value (the vault's key, never a plain hash)
-- and, unless the setting may hold a credential, the value itself.

CREATE TABLE config_state (
    host        text PRIMARY KEY,
    settings    jsonb NOT NULL,
    source      text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE ON config_state TO quire_app;
