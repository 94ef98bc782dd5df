/* test_offload.c - the store workers (userspace/http/offload.c): the pass without the
 * store, the bounded queue (reserve/submit), where each pass runs and with which store
 * use, draining at stop, and eg_offload_call. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "daemon.h"
#include "log.h"
#include "offload.h"
#include "util.h"

static struct eg_daemon d;

/* A handler that needs the store unless it may use it (as eg_verdict with a session
 * not in memory), and records how it was called. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool gate_open = true; /* false: handlers on a worker wait (a hung store) */
static int calls_any, calls_down;
static bool saw_admitted;
static pthread_t main_thread;
static bool ran_on_main;

static void h_needs_store(struct eg_daemon *dd, const struct eg_req *r, struct eg_resp *resp)
{
	if (r->pass && r->pass->use == EG_STORE_USE_NONE) {
		r->pass->admitted = true;
		r->pass->store_needed = true;
		eg_resp_text(resp, 401, "partial, must not be answered\n");
		return;
	}
	pthread_mutex_lock(&mu);
	if (r->pass && r->pass->use == EG_STORE_USE_DOWN)
		calls_down++;
	else
		calls_any++;
	saw_admitted = r->pass && r->pass->admitted;
	ran_on_main = pthread_equal(pthread_self(), main_thread);
	while (!gate_open)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	eg_resp_text(resp, r->pass && r->pass->use == EG_STORE_USE_DOWN ? 401 : 200, "decided\n");
}

static void h_local(struct eg_daemon *dd, const struct eg_req *r, struct eg_resp *resp)
{
	eg_resp_text(resp, 204, "");
}

static int done_count;
static void on_done(struct eg_offload_job *job)
{
	pthread_mutex_lock(&mu);
	done_count++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static struct eg_offload_job *job_new(void)
{
	struct eg_offload_job *j = xcalloc(1, sizeof(*j));
	j->fn = h_needs_store;
	j->done = on_done;
	return j;
}

static void wait_done(int n)
{
	pthread_mutex_lock(&mu);
	while (done_count < n)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void open_gate(bool open)
{
	pthread_mutex_lock(&mu);
	gate_open = open;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void test_local_pass(void **state)
{
	struct eg_req r = { .method = "GET", .url = "/auth" };
	struct eg_req_pass pass;
	struct eg_resp resp = { 0 };

	assert_int_equal(eg_verdict_local(&d, h_local, &r, &pass, &resp), EG_OFFLOAD_DONE);
	assert_int_equal(resp.status, 204);
	eg_resp_free(&resp);
	/* stopped short: nothing answered, even what the handler wrote */
	assert_int_equal(eg_verdict_local(&d, h_needs_store, &r, &pass, &resp), EG_OFFLOAD_NEEDS_STORE);
	assert_int_equal(resp.status, 0);
	assert_int_equal(resp.n_headers, 0);
	assert_true(pass.admitted);
	/* no worker: decided as in an outage, on this thread, the first pass's state kept */
	calls_down = 0;
	eg_verdict_store_down(&d, h_needs_store, &r, &pass, &resp);
	assert_int_equal(resp.status, 401);
	assert_int_equal(calls_down, 1);
	assert_true(saw_admitted);
	eg_resp_free(&resp);
}

static void test_queue_bound_and_drain(void **state)
{
	struct eg_offload *p = eg_offload_new(&d, 1, 2);
	struct eg_offload_job *j[3];

	assert_non_null(p);
	done_count = calls_any = 0;
	open_gate(false); /* the store hangs: the worker holds the first job */
	for (int i = 0; i < 3; i++) {
		j[i] = job_new();
		j[i]->pass.admitted = true;
	}
	assert_true(eg_offload_reserve(p));
	eg_offload_submit(p, j[0]);
	while (__atomic_load_n(&calls_any, __ATOMIC_SEQ_CST) == 0)
		usleep(1000);
	/* one running, room for two waiting, then full */
	assert_true(eg_offload_reserve(p));
	eg_offload_submit(p, j[1]);
	assert_true(eg_offload_reserve(p));
	assert_false(eg_offload_reserve(p)); /* reserved places count */
	eg_offload_submit(p, j[2]);
	assert_false(eg_offload_reserve(p));
	assert_int_equal(done_count, 0);
	open_gate(true);
	wait_done(3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(j[i]->resp.status, 200); /* the full pass, with the store */
		eg_resp_free(&j[i]->resp);
	}
	assert_int_equal(calls_any, 3);
	assert_true(saw_admitted);
	assert_false(ran_on_main);
	assert_true(eg_offload_reserve(p)); /* room again */
	/* stop: a job queued before it is still run (its connection must be resumed) */
	struct eg_offload_job *last = job_new();
	eg_offload_submit(p, last);
	eg_offload_stop(p);
	assert_int_equal(done_count, 4);
	assert_int_equal(last->resp.status, 200);
	assert_false(eg_offload_reserve(p)); /* stopped: fronts decide as in an outage */
	eg_offload_free(p);
	for (int i = 0; i < 3; i++)
		free(j[i]);
	eg_resp_free(&last->resp);
	free(last);
}

/* A verdict that no worker started within its wait (http.store_queue_wait) is decided as
 * in an outage, without the store; one started in time, and one without a limit (the
 * callback, the logouts), with it. */
static void test_wait_bound(void **state)
{
	struct eg_offload *p = eg_offload_new(&d, 1, 8);
	struct eg_offload_job *j[3];

	assert_non_null(p);
	done_count = calls_any = calls_down = 0;
	open_gate(false); /* the store is slow: the worker holds the first job */
	for (int i = 0; i < 3; i++)
		j[i] = job_new();
	j[0]->start_by_ns = now_mono_ns() + 60 * 1000000000ull;
	j[1]->start_by_ns = now_mono_ns() + 20 * 1000000ull; /* 20 ms */
	j[2]->start_by_ns = 0;
	assert_true(eg_offload_reserve(p));
	eg_offload_submit(p, j[0]);
	while (__atomic_load_n(&calls_any, __ATOMIC_SEQ_CST) == 0)
		usleep(1000);
	for (int i = 1; i < 3; i++) {
		assert_true(eg_offload_reserve(p));
		eg_offload_submit(p, j[i]);
	}
	usleep(50 * 1000); /* past j[1]'s limit while it waits behind j[0] */
	open_gate(true);
	wait_done(3);
	assert_int_equal(j[0]->resp.status, 200);
	assert_int_equal(j[1]->resp.status, 401); /* as in an outage: the store never asked */
	assert_int_equal(j[2]->resp.status, 200);
	assert_int_equal(calls_any, 2);
	assert_int_equal(calls_down, 1);
	eg_offload_free(p);
	for (int i = 0; i < 3; i++) {
		eg_resp_free(&j[i]->resp);
		free(j[i]);
	}
}

static pthread_t call_thread;
static int call_count;
static void record_call(struct eg_daemon *dd, void *arg)
{
	pthread_mutex_lock(&mu);
	call_thread = pthread_self();
	call_count += *(int *)arg;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void test_call(void **state)
{
	struct eg_offload *p = eg_offload_new(&d, 2, 1);
	int one = 1;

	assert_non_null(p);
	call_count = 0;
	/* not refused when the queue is full: bans must not be lost nor wait on a front */
	assert_true(eg_offload_reserve(p));
	eg_offload_call(&d, p, record_call, &one);
	pthread_mutex_lock(&mu);
	while (call_count < 1)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	assert_false(pthread_equal(call_thread, pthread_self()));
	struct eg_offload_job *j = job_new();
	done_count = 0;
	eg_offload_submit(p, j);
	eg_offload_stop(p);
	assert_int_equal(done_count, 1);
	/* stopped (or no pool): run here */
	eg_offload_call(&d, p, record_call, &one);
	assert_int_equal(call_count, 2);
	assert_true(pthread_equal(call_thread, pthread_self()));
	eg_offload_call(&d, NULL, record_call, &one);
	assert_int_equal(call_count, 3);
	eg_offload_free(p);
	eg_resp_free(&j->resp);
	free(j);
}

int main(void)
{
	eg_log_set_level("error");
	main_thread = pthread_self();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_pass),
		cmocka_unit_test(test_queue_bound_and_drain),
		cmocka_unit_test(test_wait_bound),
		cmocka_unit_test(test_call),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
