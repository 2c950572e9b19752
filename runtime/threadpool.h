/* threadpool: a fixed set of worker threads that run one parallel task at a time.
 *
 * threadpool_run() splits a task over all threads (the caller's thread takes part)
 * and returns when every part is done. A pool is used by one caller at a time. */
#pragma once

struct threadpool;

/* fn is called once per thread with ith in [0, nth). */
typedef void (*threadpool_fn)(void *arg, int ith, int nth);

/* Starts a pool of n_threads threads in all (n_threads <= 0: one per core).
 * Returns NULL on failure. Free with threadpool_free(). */
struct threadpool *threadpool_new(int n_threads);
void threadpool_free(struct threadpool *tp);
int threadpool_size(const struct threadpool *tp);
/* Runs fn on every thread of the pool (a NULL pool runs it once with ith 0, nth 1). */
void threadpool_run(struct threadpool *tp, threadpool_fn fn, void *arg);
