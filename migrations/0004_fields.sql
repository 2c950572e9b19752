-- 0004: the extraction's verdict on a document, and the document type given
-- at submission.
--
-- The worker records the document's confidence (the lowest of its key
-- fields', extractors/extract.h), the auto-approval threshold in force when it
-- was decided (fields.auto_approve, kept so the decision can be explained
-- later), and whether the document was approved automatically: confidence at
-- or above the threshold and every validation check passed. Documents not
-- approved automatically wait for a person. doc_type_given overrides
-- classification (`quire submit --type`); the type the document was processed
-- as stays in doc_type (0001).

ALTER TABLE documents
    ADD COLUMN doc_type_given text CHECK (doc_type_given ~ '^[a-z0-9_]{1,40}$'),
    ADD COLUMN confidence real CHECK (confidence BETWEEN 0 AND 1),
    ADD COLUMN approve_threshold real CHECK (approve_threshold BETWEEN 0 AND 1.01),
    ADD COLUMN auto_approved boolean;

-- Processed documents that need a person, oldest first.
CREATE INDEX documents_needs_review_idx ON documents (created_at) WHERE auto_approved = false;
