-- 0008: running totals of the work done, for /metrics (pipeline/counters.c).
-- One row per counter and label, added to in the transaction that completes a
-- job, so every worker on every host counts into the same totals and a job
-- counts once. Totals never go down: erasing documents or pruning jobs does
-- not take back pages already read.

CREATE TABLE counters (
    name   text NOT NULL,
    label  text NOT NULL DEFAULT '',
    value  double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (name, label)
);

GRANT SELECT, INSERT, UPDATE ON counters TO quire_app;
