-- 0011: an index on the audit log's actions, so the audit page finds the
-- latest verification (and a filter by action finds its entries) without
-- reading the log from the end.
CREATE INDEX audit_action_idx ON audit_log (action, id);
