-- 0006: originals stored as sealed chunks, one row each, so an upload is
-- written as it arrives and never held whole by the writer.
--
-- A chunked payload keeps its secretstream header in payloads.sealed and its
-- chunk count in payloads.chunks; payload_chunks holds chunk 1 .. chunks, each
-- one sealed secretstream chunk (at most 64 KiB of plaintext and its 17 bytes
-- of tag), the last one carrying the final tag. Opening the payload checks
-- the count and the stream: a missing, reordered, moved or added chunk does
-- not open. payloads.chunks NULL: the whole sealed payload is in
-- payloads.sealed (everything stored before this migration, and the small
-- payloads). Deleting the payload row (erasure) deletes its chunks.

ALTER TABLE payloads ADD COLUMN chunks integer CHECK (chunks >= 0);

CREATE TABLE payload_chunks (
    document_id   bigint NOT NULL,
    purpose       text NOT NULL,
    version       integer NOT NULL,
    seq           integer NOT NULL CHECK (seq >= 1),
    sealed        bytea NOT NULL,
    PRIMARY KEY (document_id, purpose, version, seq),
    FOREIGN KEY (document_id, purpose, version) REFERENCES payloads (document_id, purpose, version)
        ON DELETE CASCADE ON UPDATE CASCADE
);
