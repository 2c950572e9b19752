-- 0003: key versions, erasure, users and API tokens, signed audit checkpoints,
-- and the database role the application runs as.
--
-- The wrapping keys themselves live in the keyring file (core/vault.h), never
-- here: key_versions only coordinates which version new documents use, so that
-- rotation and retirement are safe while other processes submit documents.

CREATE TABLE key_versions (
    version     integer PRIMARY KEY CHECK (version > 0),
    state       text NOT NULL CHECK (state IN ('active', 'decrypt', 'retired')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);
-- Exactly one version wraps new data keys.
CREATE UNIQUE INDEX key_versions_one_active ON key_versions ((true)) WHERE state = 'active';
INSERT INTO key_versions (version, state) VALUES (1, 'active');

CREATE INDEX documents_key_version_idx ON documents (key_version);

-- Erasure (crypto-shredding) removes the data key, every payload and the keyed
-- hash of the content; the row stays, content-free, as the object of audit entries.
ALTER TABLE documents
    ALTER COLUMN wrapped_key DROP NOT NULL,
    ALTER COLUMN content_mac DROP NOT NULL,
    ADD COLUMN erased_at timestamptz,
    ADD CONSTRAINT documents_erased_has_no_key CHECK (state <> 'erased' OR wrapped_key IS NULL);

CREATE TABLE users (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    role           text NOT NULL CHECK (role IN ('admin', 'operator', 'reviewer', 'auditor')),
    password_hash  text NOT NULL,
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz
);

-- API tokens are stored only as a keyed hash; the token is shown once.
CREATE TABLE api_tokens (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    role          text NOT NULL CHECK (role IN ('admin', 'operator', 'reviewer', 'auditor')),
    token_mac     bytea NOT NULL UNIQUE,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);

-- Signed checkpoints of the audit chain: the hash of the chain up to
-- last_entry_id, signed with the vault's Ed25519 key. Append-only, like the log.
CREATE TABLE audit_checkpoints (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL,
    last_entry_id  bigint NOT NULL,
    entries        bigint NOT NULL,
    hash           bytea NOT NULL,
    public_key     bytea NOT NULL,
    signature      bytea NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse();

-- The application's role: everything it needs on the working tables, but on
-- the audit tables INSERT and SELECT only. A deployment with database.url
-- grants its login role membership in quire_app (and nothing else); the owner
-- of the schema runs migrations.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'quire_app') THEN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolcreaterole)) THEN
            RAISE EXCEPTION 'role quire_app is missing and % may not create it: run CREATE ROLE quire_app NOLOGIN as an administrator, then quire migrate', current_user;
        END IF;
        CREATE ROLE quire_app NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO quire_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO quire_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO quire_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO quire_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO quire_app;
REVOKE ALL ON audit_log, audit_checkpoints FROM PUBLIC, quire_app;
GRANT SELECT, INSERT ON audit_log, audit_checkpoints TO quire_app;
REVOKE UPDATE, DELETE ON schema_migrations FROM quire_app;
