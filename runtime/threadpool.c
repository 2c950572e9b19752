/* threadpool: a fixed set of worker threads that run one parallel task at a time.
 *
 * The caller's thread is part 0 of every task; workers 1..n-1 wait for the
 * next task. A task is published by bumping `gen` under the mutex after fn and
 * arg are stored, so a worker that sees a new generation also sees the task.
 * Workers spin briefly before sleeping on the condition variable: in a forward
 * pass tasks follow each other within microseconds, and a sleep/wake round
 * trip per product would cost more than many of the products themselves, yet
 * an idle pool must cost nothing. `pending` counts workers still busy with the
 * current task; run() returns only when it reaches 0, so a task's argument is
 * never touched after run() returns. */
#include "runtime/threadpool.h"

#include <assert.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

/* Spin iterations before sleeping: about 50-100 us with the pause instruction,
 * longer than the gap between the products of one token, far shorter than a
 * scheduler tick. */
#define THREADPOOL_SPIN 20000
#define THREADPOOL_MAX_THREADS 256

struct threadpool_worker {
	struct threadpool *tp;
	int ith;
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
	atomic_uint gen;
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

/* Waits until the pool's generation differs from seen (or stop); returns the new one. */
static unsigned threadpool_wait_task(struct threadpool *tp, unsigned seen)
{
	for (int i = 0; i < THREADPOOL_SPIN; i++) {
		unsigned g = atomic_load_explicit(&tp->gen, memory_order_acquire);
		if (g != seen || atomic_load_explicit(&tp->stop, memory_order_relaxed))
			return g;
		threadpool_relax(i);
	}
	pthread_mutex_lock(&tp->mu);
	while (atomic_load(&tp->gen) == seen && !atomic_load(&tp->stop))
		pthread_cond_wait(&tp->cv_work, &tp->mu);
	unsigned g = atomic_load(&tp->gen);
	pthread_mutex_unlock(&tp->mu);
	return g;
}

static void *threadpool_main(void *p)
{
	struct threadpool_worker *w = p;
	struct threadpool *tp = w->tp;
	unsigned seen = 0;

	for (;;) {
		seen = threadpool_wait_task(tp, seen);
		if (atomic_load(&tp->stop))
			break;
		tp->fn(tp->arg, w->ith, tp->n_threads);
		if (atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_acq_rel) == 1) {
			pthread_mutex_lock(&tp->mu);
			pthread_cond_signal(&tp->cv_done);
			pthread_mutex_unlock(&tp->mu);
		}
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
	atomic_init(&tp->gen, 0);
	atomic_init(&tp->pending, 0);
	atomic_init(&tp->stop, false);

	tp->workers = calloc((size_t)n_threads, sizeof(*tp->workers));
	if (!tp->workers) {
		threadpool_free(tp);
		return NULL;
	}
	for (int i = 1; i < n_threads; i++) {
		tp->workers[i].tp = tp;
		tp->workers[i].ith = i;
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
	assert(atomic_load(&tp->pending) == 0);
	tp->fn = fn;
	tp->arg = arg;
	atomic_store(&tp->pending, tp->n_threads - 1);
	pthread_mutex_lock(&tp->mu);
	atomic_fetch_add_explicit(&tp->gen, 1, memory_order_release);
	pthread_cond_broadcast(&tp->cv_work);
	pthread_mutex_unlock(&tp->mu);

	fn(arg, 0, tp->n_threads);

	for (int i = 0; i < THREADPOOL_SPIN; i++) {
		if (atomic_load_explicit(&tp->pending, memory_order_acquire) == 0)
			return;
		threadpool_relax(i);
	}
	pthread_mutex_lock(&tp->mu);
	while (atomic_load(&tp->pending) != 0)
		pthread_cond_wait(&tp->cv_done, &tp->mu);
	pthread_mutex_unlock(&tp->mu);
}
