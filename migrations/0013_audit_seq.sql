-- 0013: each audit entry's position in the log (1, 2, 3, ... in id order), so
-- that the process that appends an entry knows how long the log is without
-- counting it, and can sign that length in its witness line outside the
-- database (core/witness.h). Existing entries are numbered here, once, with
-- the table's guard lifted for the length of this statement only.
ALTER TABLE audit_log ADD COLUMN seq bigint;
ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update;
UPDATE audit_log a SET seq = n.seq
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS seq FROM audit_log) n
    WHERE a.id = n.id;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;
ALTER TABLE audit_log ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX audit_seq_idx ON audit_log (seq);
