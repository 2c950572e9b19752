/* threadpool: a fixed set of worker threads that run one parallel task at a time.
 *
 * A task is cut into n parts (ith = 0..n-1). The caller's thread runs part 0
 * and then, instead of waiting, claims every part no worker has claimed yet
 * and runs it itself. On a machine shared with other processes a worker may
 * not get a core for milliseconds; this way such a worker delays nothing, and
 * each part still runs exactly once, so a task may split its work statically
 * by ith.
 *
 * Parts are handed out through one 64-bit word, `ticket`: the task's
 * generation in the high half and the next unclaimed part in the low half,
 * taken with compare-and-swap, so a worker can never claim a part of a task
 * other than the one it saw published. fn and arg are written before the
 * generation is published (release) and read after a claim (acquire).
 * `pending` counts workers between announcing a claim and finishing their
 * part; run() returns only when all parts are claimed and pending is 0, so a
 * task's argument is never touched after run() returns.
 *
 * Workers spin briefly before sleeping on the condition variable: in a
 * forward pass tasks follow each other within microseconds, yet an idle pool
 * must cost nothing. */
#include "runtime/threadpool.h"

#include <assert.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* Spin iterations before sleeping: about 50-100 us with the pause instruction,
 * longer than the gap between the products of one token, far shorter than a
 * scheduler tick. */
#define THREADPOOL_SPIN 20000
#define THREADPOOL_MAX_THREADS 256

struct threadpool_worker {
	struct threadpool *tp;
	pthread_t thread;
};

struct threadpool {
	int n_threads;
	int n_started; /* workers actually created (for a half-built pool) */
	struct threadpool_worker *workers;

	pthread_mutex_t mu;
	pthread_cond_t cv_work;
	pthread_cond_t cv_done;

	threadpool_fn fn;
	void *arg;
	_Atomic uint64_t ticket; /* generation << 32 | next part */
	atomic_int pending;
	atomic_bool stop;
};

static inline void threadpool_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* One spin step. Now and then it yields the core: with more threads than free
 * cores, the thread being waited for may be the one this spin keeps out. */
static inline void threadpool_relax(int i)
{
	if ((i & 255) == 255)
		sched_yield();
	else
		threadpool_pause();
}

static inline uint32_t ticket_gen(uint64_t t)
{
	return (uint32_t)(t >> 32);
}

/* Claims and runs parts of generation gen until none is left. */
static void threadpool_work(struct threadpool *tp, uint32_t gen)
{
	int n = tp->n_threads;
	for (;;) {
		atomic_fetch_add(&tp->pending, 1);
		/* sequentially consistent: the announcement in pending must be ordered
		 * before this look at the ticket, as run()'s last claim is before its
		 * look at pending */
		uint64_t t = atomic_load(&tp->ticket);
		bool claimed = false;
		while (ticket_gen(t) == gen && (uint32_t)t < (uint32_t)n) {
			if (atomic_compare_exchange_weak(&tp->ticket, &t, t + 1)) {
				claimed = true;
				break;
			}
		}
		if (claimed)
			tp->fn(tp->arg, (int)(uint32_t)t, n);
		if (atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_acq_rel) == 1) {
			pthread_mutex_lock(&tp->mu);
			pthread_cond_signal(&tp->cv_done);
			pthread_mutex_unlock(&tp->mu);
		}
		if (!claimed)
			return;
	}
}

/* Waits until a generation other than seen is published (or stop); returns it. */
static uint32_t threadpool_wait_task(struct threadpool *tp, uint32_t seen)
{
	for (int i = 0; i < THREADPOOL_SPIN; i++) {
		uint32_t g = ticket_gen(atomic_load_explicit(&tp->ticket, memory_order_acquire));
		if (g != seen || atomic_load_explicit(&tp->stop, memory_order_relaxed))
			return g;
		threadpool_relax(i);
	}
	pthread_mutex_lock(&tp->mu);
	while (ticket_gen(atomic_load(&tp->ticket)) == seen && !atomic_load(&tp->stop))
		pthread_cond_wait(&tp->cv_work, &tp->mu);
	uint32_t g = ticket_gen(atomic_load(&tp->ticket));
	pthread_mutex_unlock(&tp->mu);
	return g;
}

static void *threadpool_main(void *p)
{
	struct threadpool_worker *w = p;
	struct threadpool *tp = w->tp;
	uint32_t seen = 0;

	for (;;) {
		seen = threadpool_wait_task(tp, seen);
		if (atomic_load(&tp->stop))
			break;
		threadpool_work(tp, seen);
	}
	return NULL;
}

static int threadpool_n_cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	return n > THREADPOOL_MAX_THREADS ? THREADPOOL_MAX_THREADS : (int)n;
}

struct threadpool *threadpool_new(int n_threads)
{
	if (n_threads <= 0)
		n_threads = threadpool_n_cores();
	if (n_threads > THREADPOOL_MAX_THREADS)
		n_threads = THREADPOOL_MAX_THREADS;

	struct threadpool *tp = calloc(1, sizeof(*tp));
	if (!tp)
		return NULL;
	tp->n_threads = n_threads;
	pthread_mutex_init(&tp->mu, NULL);
	pthread_cond_init(&tp->cv_work, NULL);
	pthread_cond_init(&tp->cv_done, NULL);
	/* generation 0 with every part taken: nothing to claim until the first run */
	atomic_init(&tp->ticket, (uint64_t)(uint32_t)n_threads);
	atomic_init(&tp->pending, 0);
	atomic_init(&tp->stop, false);

	tp->workers = calloc((size_t)n_threads, sizeof(*tp->workers));
	if (!tp->workers) {
		threadpool_free(tp);
		return NULL;
	}
	for (int i = 1; i < n_threads; i++) {
		tp->workers[i].tp = tp;
		if (pthread_create(&tp->workers[i].thread, NULL, threadpool_main, &tp->workers[i]) != 0) {
			threadpool_free(tp);
			return NULL;
		}
		tp->n_started = i;
	}
	return tp;
}

void threadpool_free(struct threadpool *tp)
{
	if (!tp)
		return;
	pthread_mutex_lock(&tp->mu);
	atomic_store(&tp->stop, true);
	pthread_cond_broadcast(&tp->cv_work);
	pthread_mutex_unlock(&tp->mu);
	for (int i = 1; i <= tp->n_started; i++)
		pthread_join(tp->workers[i].thread, NULL);
	pthread_cond_destroy(&tp->cv_done);
	pthread_cond_destroy(&tp->cv_work);
	pthread_mutex_destroy(&tp->mu);
	free(tp->workers);
	free(tp);
}

int threadpool_size(const struct threadpool *tp)
{
	return tp ? tp->n_threads : 1;
}

void threadpool_run(struct threadpool *tp, threadpool_fn fn, void *arg)
{
	if (!tp || tp->n_threads == 1) {
		fn(arg, 0, 1);
		return;
	}
	uint32_t gen = ticket_gen(atomic_load(&tp->ticket)) + 1;
	tp->fn = fn;
	tp->arg = arg;
	pthread_mutex_lock(&tp->mu);
	/* part 0 is the caller's; workers claim from 1 */
	atomic_store_explicit(&tp->ticket, (uint64_t)gen << 32 | 1u, memory_order_release);
	pthread_cond_broadcast(&tp->cv_work);
	pthread_mutex_unlock(&tp->mu);

	fn(arg, 0, tp->n_threads);
	threadpool_work(tp, gen); /* the parts no worker has taken yet */

	for (int i = 0; i < THREADPOOL_SPIN; i++) {
		if (atomic_load(&tp->pending) == 0)
			return;
		threadpool_relax(i);
	}
	pthread_mutex_lock(&tp->mu);
	while (atomic_load(&tp->pending) != 0)
		pthread_cond_wait(&tp->cv_done, &tp->mu);
	pthread_mutex_unlock(&tp->mu);
}
