-- 0010: each payload row says how its sealed box binds the record it belongs to.
--
-- Layout 1 (every row written before this migration) binds document and
-- purpose only, so the box of one version of a result opens in the row of
-- another version: an older result copied over a corrected one would undo the
-- correction unnoticed. Layout 2 also binds the row's version (core/vault.h,
-- vault_seal_version), and reading picks the form by this column. Streamed
-- originals (always version 1) bind their own stream header; the column is
-- not consulted for them.
--
-- Rows only move forward: a new row is layout 2, and a layout-1 row becomes 2
-- when it is rewritten, never back. Otherwise marking a row layout 1 would let
-- an older box copied into it open again. Boxes written before this migration
-- stay layout 1 until rewritten, and can still be exchanged among themselves.

ALTER TABLE payloads ADD COLUMN layout smallint NOT NULL DEFAULT 1 CHECK (layout IN (1, 2));
ALTER TABLE payloads ALTER COLUMN layout SET DEFAULT 2;

CREATE FUNCTION payloads_layout_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.layout < 2 AND (TG_OP = 'INSERT' OR OLD.layout >= 2) THEN
        RAISE EXCEPTION 'payload rows are written in layout 2; layout 1 is kept only by rows written before migration 0010';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER payloads_layout_forward BEFORE INSERT OR UPDATE OF layout ON payloads
    FOR EACH ROW EXECUTE FUNCTION payloads_layout_forward();
