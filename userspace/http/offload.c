/* offload.c - the store workers: a bounded FIFO of requests that need the store, and
 * the passes over a request without it (see offload.h). */
#include "offload.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define WORKERS_MAX 64

struct eg_offload {
	struct eg_daemon *d;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct eg_offload_job *head, *tail;
	unsigned queued, reserved, queue_max;
	bool stopping;
	pthread_t th[WORKERS_MAX];
	unsigned n_th;
};

static void run_pass(struct eg_daemon *d, eg_handler_fn fn, struct eg_req *r, struct eg_req_pass *pass,
		     enum eg_store_use use, struct eg_resp *resp)
{
	pass->use = use;
	pass->store_needed = false;
	r->pass = pass;
	fn(d, r, resp);
}

int eg_verdict_local(struct eg_daemon *d, eg_handler_fn fn, struct eg_req *r, struct eg_req_pass *pass,
		     struct eg_resp *resp)
{
	pass->admitted = false;
	run_pass(d, fn, r, pass, EG_STORE_USE_NONE, resp);
	if (!pass->store_needed)
		return EG_OFFLOAD_DONE;
	eg_resp_free(resp); /* a handler that stops short answers nothing; be sure of it */
	return EG_OFFLOAD_NEEDS_STORE;
}

void eg_verdict_store_down(struct eg_daemon *d, eg_handler_fn fn, struct eg_req *r, struct eg_req_pass *pass,
			   struct eg_resp *resp)
{
	eg_metric_inc(d->metrics, "edgegate_store_workers_total", "result", "saturated", NULL, NULL, 1);
	run_pass(d, fn, r, pass, EG_STORE_USE_DOWN, resp);
}

/* --- the pool ------------------------------------------------------------------------- */

static void run_job(struct eg_daemon *d, struct eg_offload_job *job)
{
	if (!job->fn) { /* eg_offload_call */
		job->done(job);
		return;
	}
	if (job->start_by_ns && now_mono_ns() > job->start_by_ns) {
		/* waited too long for a worker: the answer a full queue gives, now */
		eg_metric_inc(d->metrics, "edgegate_store_workers_total", "result", "waited_too_long", NULL, NULL, 1);
		run_pass(d, job->fn, &job->req, &job->pass, EG_STORE_USE_DOWN, &job->resp);
	} else
		run_pass(d, job->fn, &job->req, &job->pass, EG_STORE_USE_ANY, &job->resp);
	if (job->resp.status == 0)
		eg_resp_text(&job->resp, 500, "internal error\n");
	job->done(job);
}

/* Until stopped and drained: a job queued before the stop is still answered (its
 * connection is parked and must be resumed before the listeners stop). */
static void *worker_main(void *arg)
{
	struct eg_offload *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !(p->stopping && p->reserved == 0))
			pthread_cond_wait(&p->cv, &p->mu);
		struct eg_offload_job *job = p->head;
		if (!job)
			break;
		p->head = job->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&p->mu);
		job->next = NULL;
		run_job(p->d, job);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

bool eg_offload_reserve(struct eg_offload *p)
{
	bool ok;

	if (!p)
		return false;
	pthread_mutex_lock(&p->mu);
	ok = !p->stopping && p->queued + p->reserved < p->queue_max;
	if (ok)
		p->reserved++;
	pthread_mutex_unlock(&p->mu);
	return ok;
}

void eg_offload_submit(struct eg_offload *p, struct eg_offload_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&p->mu);
	p->reserved--;
	if (p->tail)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	p->queued++;
	if (p->stopping)
		pthread_cond_broadcast(&p->cv); /* the last reservation: idle workers may exit */
	else
		pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	eg_metric_inc(p->d->metrics, "edgegate_store_workers_total", "result", "queued", NULL, NULL, 1);
}

struct call {
	struct eg_offload_job job; /* first: the queue's */
	struct eg_daemon *d;
	eg_offload_call_fn fn;
	void *arg;
};

static void call_run(struct eg_offload_job *job)
{
	struct call *c = (struct call *)job;
	c->fn(c->d, c->arg);
	free(c);
}

void eg_offload_call(struct eg_daemon *d, struct eg_offload *p, eg_offload_call_fn fn, void *arg)
{
	bool queued = false;

	if (p) {
		struct call *c = xcalloc(1, sizeof(*c));
		c->job.done = call_run;
		c->d = d;
		c->fn = fn;
		c->arg = arg;
		pthread_mutex_lock(&p->mu);
		if (!p->stopping) {
			/* not bounded by queue_max: each is a rare, short piece of work that must
			 * not be lost, and refusing it would mean doing it here */
			if (p->tail)
				p->tail->next = &c->job;
			else
				p->head = &c->job;
			p->tail = &c->job;
			p->queued++;
			pthread_cond_signal(&p->cv);
			queued = true;
		}
		pthread_mutex_unlock(&p->mu);
		if (!queued)
			free(c);
	}
	if (!queued)
		fn(d, arg); /* no pool (tests), or it is stopping */
}

struct eg_offload *eg_offload_new(struct eg_daemon *d, unsigned workers, unsigned queue_max)
{
	struct eg_offload *p = xcalloc(1, sizeof(*p));
	sigset_t all, old;

	p->d = d;
	p->queue_max = queue_max ? queue_max : 1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (workers < 1)
		workers = 1;
	if (workers > WORKERS_MAX)
		workers = WORKERS_MAX;
	/* signals belong to the main thread (SIGTERM, SIGHUP) */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < workers; i++) {
		char name[16];
		if (pthread_create(&p->th[p->n_th], NULL, worker_main, p) != 0)
			break;
		snprintf(name, sizeof(name), "eg-store-%u", i);
		pthread_setname_np(p->th[p->n_th], name);
		p->n_th++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p->n_th == 0) {
		log_err("http: cannot start the store workers");
		eg_offload_free(p);
		return NULL;
	}
	eg_metric_help(d->metrics, "edgegate_store_workers_total", "counter",
		       "requests that needed the store: queued for a store worker, or decided as in an outage "
		       "because the queue was full (saturated) or no worker started them within "
		       "http.store_queue_wait (waited_too_long)");
	return p;
}

void eg_offload_stop(struct eg_offload *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->n_th; i++)
		pthread_join(p->th[i], NULL);
	p->n_th = 0;
}

void eg_offload_free(struct eg_offload *p)
{
	if (!p)
		return;
	eg_offload_stop(p);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
