-- 0012: where reviewers' corrected values sat on the page, per supplier, so
-- the next document of that supplier is read there (extractors/learn.h,
-- pipeline/learned.h).
--
-- supplier_key is a keyed hash (vault_keyed_hash) of one identity of the
-- supplier ("vat:...", "iban:...", "name:..."), never the identity itself.
-- hint holds anchor words and a box, which are document text: it is sealed
-- with the data key of the document the correction was made on (purpose
-- "learned:<field>"), so a key rotation rewraps it with that document's key
-- and erasing the document erases what was learned from it.
CREATE TABLE learned_fields (
    supplier_key bytea NOT NULL CHECK (length(supplier_key) = 32),
    field text NOT NULL CHECK (length(field) BETWEEN 1 AND 64),
    document_id bigint NOT NULL REFERENCES documents (id),
    hint bytea NOT NULL,
    actor text NOT NULL,
    learned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (supplier_key, field)
);
CREATE INDEX learned_fields_document_idx ON learned_fields (document_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON learned_fields TO quire_app;
