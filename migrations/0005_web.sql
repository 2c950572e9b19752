-- 0005: the web UI's sessions, and the review of results: corrections as
-- versions with who and when, and approval or rejection of a document.
--
-- A session token lives only in the user's cookie; the database holds its
-- keyed hash (like API tokens), so reading this table gives no session away.
-- Corrected results are sealed payloads (purpose 'result', version 2, 3, ...);
-- result_versions records who made each version and which fields changed,
-- never their values.

CREATE TABLE web_sessions (
    id            bigserial PRIMARY KEY,
    token_mac     bytea NOT NULL UNIQUE,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf          text NOT NULL,
    client        text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);

ALTER TABLE documents
    ADD COLUMN review_state text NOT NULL DEFAULT 'pending'
        CHECK (review_state IN ('pending', 'approved', 'rejected')),
    ADD COLUMN reviewed_by  text,
    ADD COLUMN reviewed_at  timestamptz,
    ADD COLUMN uploaded_by  text;
CREATE INDEX documents_review_idx ON documents (review_state, created_at);

CREATE TABLE result_versions (
    document_id   bigint NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    version       integer NOT NULL CHECK (version > 1),
    actor         text NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    fields        text NOT NULL DEFAULT '',
    PRIMARY KEY (document_id, version)
);

-- Upload retries from API clients: the same Idempotency-Key returns the same
-- document (documents.idempotency_mac, 0002); nothing more is needed here.

GRANT SELECT, INSERT, UPDATE, DELETE ON web_sessions, result_versions TO quire_app;
GRANT USAGE, SELECT ON SEQUENCE web_sessions_id_seq TO quire_app;
