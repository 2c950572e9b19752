-- 0015: what reviewers did with each extracted value, for the quality page:
-- one row per document and field once a person corrected the field (corrected)
-- or decided the document without correcting it (kept), with the confidence the
-- extraction gave the value. Confidences are not document content; the values
-- themselves stay sealed in the results.
CREATE TABLE field_reviews (
    document_id bigint NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    field       text NOT NULL CHECK (length(field) <= 128),
    confidence  real CHECK (confidence >= 0 AND confidence <= 1),
    corrected   boolean NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, field)
);
CREATE INDEX field_reviews_at_idx ON field_reviews (at);

GRANT SELECT, INSERT, UPDATE, DELETE ON field_reviews TO quire_app;
