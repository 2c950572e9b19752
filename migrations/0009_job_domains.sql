-- 0009: the job row's value rules as domains instead of table CHECK constraints.
--
-- PostgreSQL reads a table's CHECK constraints back from their stored form
-- and compiles them again at every statement that writes the table, whatever
-- columns it sets. On jobs, written by every claim, heartbeat, progress note
-- and completion, that was about a fifth of the server's work for a claim and
-- a completion. A domain's check is compiled once per connection and runs only
-- where its column is assigned. The rules stay exactly the same.
--
-- The domains get their checks after the columns changed type: a column moved
-- to a domain without constraints over its own type keeps its storage (only
-- the two partial indexes whose condition names state are built again), and
-- adding the checks then only reads the rows to validate them.

CREATE DOMAIN job_state AS text;
CREATE DOMAIN job_page AS integer;

ALTER TABLE jobs
    DROP CONSTRAINT jobs_state_check,
    DROP CONSTRAINT jobs_progress_page_check,
    DROP CONSTRAINT jobs_progress_pages_check,
    ALTER COLUMN state TYPE job_state,
    ALTER COLUMN progress_page TYPE job_page,
    ALTER COLUMN progress_pages TYPE job_page;

ALTER DOMAIN job_state ADD CONSTRAINT job_state_check
    CHECK (VALUE IN ('queued', 'running', 'done', 'failed', 'dead', 'cancelled'));
ALTER DOMAIN job_page ADD CONSTRAINT job_page_check CHECK (VALUE >= 0);
