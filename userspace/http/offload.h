/* offload.h - requests that need the store, off the threads that read requests.
 *
 * A libmicrohttpd thread serves many connections; a handler that waits for the store
 * (store.timeout while Redis hangs) holds up every request queued on that thread, even
 * those the node can answer from memory. So a handler is first tried without the store
 * (eg_verdict_local: EG_STORE_USE_NONE, see http.h); only a request that stopped short
 * goes to a small pool of store workers, and the front parks its connection meanwhile
 * (http.c: MHD_suspend_connection) and answers it when the worker is done. Verdicts
 * answered from memory (public routes, warm bearer tokens, sessions in memory) take no
 * extra hop.
 *
 * The queue is bounded: when it is full (or the pool is stopping) the front answers at
 * once as during a store outage (eg_verdict_store_down), never blocking its thread. The
 * bound is large (http.store_queue): a burst of verdicts that each need the store (clients
 * reconnecting after a deploy) is a wait of a second or less, and answering one as in an outage
 * signs a valid session out. The wait is bounded in time instead (job->start_by_ns,
 * http.store_queue_wait).
 *
 * Usage by a front (http.c's park() is one):
 *   struct eg_req_pass pass;
 *   if (eg_verdict_local(d, fn, &r, &pass, &resp) == EG_OFFLOAD_NEEDS_STORE) {
 *           if (eg_offload_reserve(d->offload)) {
 *                   job = calloc'd (resp empty); job->fn = fn; job->req = r with pointers
 *                   that stay valid until done; job->pass = pass; job->done, job->arg;
 *                   park the connection (before the submit: done may run at once);
 *                   eg_offload_submit(d->offload, job);
 *           } else
 *                   eg_verdict_store_down(d, fn, &r, &pass, &resp);
 *   }
 * job->done runs on the worker once job->resp is complete; the front queues job->resp
 * from its own thread, then eg_resp_free(&job->resp) and frees the job. */
#ifndef EG_OFFLOAD_H
#define EG_OFFLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "http.h"

struct eg_daemon;
struct eg_offload;

#define EG_OFFLOAD_DONE 0
#define EG_OFFLOAD_NEEDS_STORE 1

/* Runs fn on r without the store (r->pass = pass, USE_NONE). EG_OFFLOAD_DONE: resp holds
 * the answer. EG_OFFLOAD_NEEDS_STORE: nothing was answered (resp is empty); pass keeps
 * what the next pass over r must know (the ban/rate check is done once). */
int eg_verdict_local(struct eg_daemon *d, eg_handler_fn fn, struct eg_req *r, struct eg_req_pass *pass,
		     struct eg_resp *resp);
/* After EG_OFFLOAD_NEEDS_STORE when no worker can take r: fn decides as during a store
 * outage (sessions in memory within store.outage_grace are served, others fail closed
 * with the honest answer), without touching the store. resp must be empty. */
void eg_verdict_store_down(struct eg_daemon *d, eg_handler_fn fn, struct eg_req *r, struct eg_req_pass *pass,
			   struct eg_resp *resp);

struct eg_offload_job;
typedef void (*eg_offload_done_fn)(struct eg_offload_job *job);

struct eg_offload_job {
	eg_handler_fn fn;
	struct eg_req req;       /* every pointer in it stays valid until done is called */
	struct eg_req_pass pass; /* from eg_verdict_local; req.pass is pointed here */
	struct eg_resp resp;     /* the answer, filled on the worker (starts empty) */
	eg_offload_done_fn done; /* on the worker, once resp is complete */
	void *arg;               /* the front's */
	/* CLOCK_MONOTONIC ns (now_mono_ns): a job no worker has started by then is decided as
	 * in an outage, without the store (eg_verdict_store_down's answer), so a store too slow
	 * for the load costs a bounded wait, not an unbounded one. 0: no limit. */
	uint64_t start_by_ns;
	struct eg_offload_job *next;
};

/* Runs fn(d, arg) on a store worker, soon (after the requests queued before it), or here
 * when there is no pool or it is stopping. For work a front must not wait for that must
 * not be lost either (recording a ban a verdict decided). Not refused when the queue is
 * full. */
typedef void (*eg_offload_call_fn)(struct eg_daemon *d, void *arg);
void eg_offload_call(struct eg_daemon *d, struct eg_offload *p, eg_offload_call_fn fn, void *arg);

/* Starts `workers` threads named eg-store-N (before privileges are dropped: they are
 * checked like every other thread) with room for `queue_max` waiting requests. */
struct eg_offload *eg_offload_new(struct eg_daemon *d, unsigned workers, unsigned queue_max);
/* Takes a place in the queue; false when it is full or the pool is stopping (nothing
 * taken). A reserved place must be used by eg_offload_submit. */
bool eg_offload_reserve(struct eg_offload *p);
/* Queues a job in a reserved place. Never fails; job->done is called on a worker. */
void eg_offload_submit(struct eg_offload *p, struct eg_offload_job *job);
/* Stops taking jobs (eg_offload_reserve says false from now on), runs those queued (their
 * connections must be resumed before the listeners stop) and joins the workers. The pool
 * stays allocated: fronts still running may call eg_offload_reserve. NULL is fine. */
void eg_offload_stop(struct eg_offload *p);
/* Stops (if not yet) and frees the pool, once no front can use it any more. NULL is fine. */
void eg_offload_free(struct eg_offload *p);

#endif
