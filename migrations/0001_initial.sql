-- 0001: documents, their encrypted payloads, the job queue and the audit log.
-- Nothing here holds document content in plaintext: payloads are sealed by the
-- vault, and dedupe uses a keyed hash (content_mac), never a plain hash.

CREATE TABLE documents (
    id            bigserial PRIMARY KEY,
    created_at    timestamptz NOT NULL DEFAULT now(),
    size_bytes    bigint NOT NULL CHECK (size_bytes > 0),
    content_mac   bytea NOT NULL UNIQUE,
    wrapped_key   bytea NOT NULL,
    key_version   integer NOT NULL,
    doc_type      text,
    page_count    integer,
    state         text NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'processing', 'processed', 'failed', 'erased'))
);

-- Sealed payloads: purpose 'original', 'filename', 'text', 'result'.
CREATE TABLE payloads (
    document_id   bigint NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    purpose       text NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    sealed        bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, purpose, version)
);

CREATE TABLE jobs (
    id               bigserial PRIMARY KEY,
    document_id      bigint NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    kind             text NOT NULL DEFAULT 'process',
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'done', 'failed', 'dead', 'cancelled')),
    priority         integer NOT NULL DEFAULT 0,
    run_at           timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 3,
    lease_token      uuid,
    lease_expires_at timestamptz,
    worker           text,
    progress         text,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz
);

-- Serves exactly the claim query: queued jobs by priority, then run-at.
CREATE INDEX jobs_claim_idx ON jobs (priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_document_idx ON jobs (document_id);

CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL,
    actor        text NOT NULL,
    action       text NOT NULL,
    object_type  text NOT NULL DEFAULT '',
    object_id    bigint NOT NULL DEFAULT 0,
    outcome      text NOT NULL,
    client       text NOT NULL DEFAULT '',
    detail       text NOT NULL DEFAULT '',
    prev_hash    bytea NOT NULL,
    hash         bytea NOT NULL
);
CREATE INDEX audit_object_idx ON audit_log (object_type, object_id);

CREATE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse();
