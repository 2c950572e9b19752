-- 0002: the job queue's leases, heartbeats, progress, idempotent submission,
-- cancellation and retention.
--
-- A running job holds a lease (lease_token, lease_expires_at); its worker
-- renews it by heartbeat (heartbeat_at). When the lease runs out the reaper
-- puts the job back in the queue, or declares it dead past max_attempts.

ALTER TABLE jobs
    ADD COLUMN heartbeat_at   timestamptz,
    ADD COLUMN progress_page  integer CHECK (progress_page >= 0),
    ADD COLUMN progress_pages integer CHECK (progress_pages >= 0);

-- An idempotency key given with an upload is kept only as a keyed hash, like
-- the content (content_mac): the same key returns the same document.
ALTER TABLE documents ADD COLUMN idempotency_mac bytea UNIQUE;

-- A cancelled job leaves its document cancelled.
ALTER TABLE documents DROP CONSTRAINT documents_state_check;
ALTER TABLE documents ADD CONSTRAINT documents_state_check
    CHECK (state IN ('queued', 'processing', 'processed', 'failed', 'erased', 'cancelled'));

-- jobs_claim_idx (0001) serves the claim query exactly:
--   WHERE state = 'queued' AND run_at <= now() ORDER BY priority DESC, run_at, id.
-- No index on finished_at: retention keeps the table small enough to scan for
-- throughput and pruning, and every index costs each claim and completion.

-- The jobs table is small and hot: every job row is updated three times or
-- more (claim, heartbeats, completion) and finished rows are pruned after
-- worker.retention_h. Vacuum it after 1% of its rows (plus 200) changed
-- instead of the default 20%, analyse after 2%, without cost-based pauses, so
-- dead row versions do not pile up between runs; leave 30% of each page free
-- so a row's new version usually lands on the same page.
ALTER TABLE jobs SET (
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 200,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);
