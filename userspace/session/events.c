/* events.c - follows the shared store's event stream (see events.h).
 *
 * One thread, one hiredis connection of its own (never the pool the verdict path uses):
 *   XREAD COUNT 512 BLOCK 1000 STREAMS <prefix>events <last id>
 * Entries: t (revoke | ban | unban | deny | undeny), k (session id | prefix | "deny <prefix>"), v (the store record, JSON),
 * n (the publishing process). A node's own events are skipped (it applied them when it
 * made them). Applying is idempotent, so replaying a few events after a crash (the saved
 * id lags by up to SAVE_MS) costs nothing.
 *
 * Gap check, at every (re)connection: XINFO STREAM tells the newest id ever added and
 * the newest id trimmed away (max-deleted-entry-id, Redis >= 7.0). If an entry after
 * our last id was trimmed, or the stream is gone or went backwards (Redis lost its
 * data), events were missed: the revocation records since our last id (minus a slack
 * for clock skew), all ban records and all deny/allow records are read whole (SCAN):
 * what was added meanwhile is applied, and the bans and deny/allow entries the store no
 * longer holds are lifted (eg_abuse_sync, eg_gate_resync); then following resumes. */
#include "events.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "abuse.h"
#include "admin.h"
#include "config.h"
#include "daemon.h"
#include "gate.h"
#include "log.h"
#include "metrics.h"
#include "revoke.h"
#include "store.h"
#include "util.h"

#define BLOCK_MS 1000
#define BATCH 512
#define SAVE_MS 1000
#define RETRY_MS 200
#define RESYNC_SLACK_S 10

struct eg_events {
	struct eg_daemon *d;
	void *impl;
	char stream[128];
	char node[32];
	char last[64];  /* newest id applied (or skipped) */
	char saved[64]; /* ... as written to path */
	char *path;
	int fd;
	bool warned_save;
	int timeout_ms;
	pthread_t th;
	bool running;
	volatile bool stop;
	bool connected;
	uint64_t saved_ms, checked_ms;
	/* counters (admin "events") */
	uint64_t applied, own, ignored, resyncs, reconnects;
	int64_t last_event_unix;
	/* The thread writes last, connected and the counters; the admin thread reads them
	 * (adm_events): every write and that read take mu. The thread's own reads need none. */
	pthread_mutex_t mu;
};

/* ++*counter, or `last = id`, under ev->mu (see struct eg_events) */
static void bump(struct eg_events *ev, uint64_t *counter)
{
	pthread_mutex_lock(&ev->mu);
	(*counter)++;
	pthread_mutex_unlock(&ev->mu);
}

static void set_last(struct eg_events *ev, const char *id)
{
	pthread_mutex_lock(&ev->mu);
	snprintf(ev->last, sizeof(ev->last), "%s", id);
	pthread_mutex_unlock(&ev->mu);
}

static void set_connected(struct eg_events *ev, bool on)
{
	pthread_mutex_lock(&ev->mu);
	ev->connected = on;
	pthread_mutex_unlock(&ev->mu);
}

static uint64_t mono_ms(void)
{
	return now_mono_ns() / 1000000ull;
}

/* "ms-seq" -> two numbers; 0 ok. */
static int id_parse(const char *id, uint64_t *ms, uint64_t *seq)
{
	char *end;

	if (!id || !*id)
		return -1;
	errno = 0;
	*ms = strtoull(id, &end, 10);
	*seq = 0;
	if (errno || end == id)
		return -1;
	if (*end == '-') {
		const char *s = end + 1;
		*seq = strtoull(s, &end, 10);
		if (errno || end == s)
			return -1;
	}
	return *end ? -1 : 0;
}

static int id_cmp(const char *a, const char *b)
{
	uint64_t am, as, bm, bs;

	if (id_parse(a, &am, &as) || id_parse(b, &bm, &bs))
		return 0;
	if (am != bm)
		return am < bm ? -1 : 1;
	return as < bs ? -1 : as > bs;
}

/* One short line rewritten in place on a descriptor opened at start (the state dir may
 * not be writable by the user the daemon runs as; the file is). Not fsync'd: a lost or
 * torn id only means a longer catch-up or a start from the stream's end (safe: bans and
 * deny entries are read whole at start, revocations from before a start concern no
 * session or flow of the new process). */
static void save_id(struct eg_events *ev, bool force)
{
	uint64_t now = mono_ms();
	char line[80];

	if (ev->fd < 0 || strcmp(ev->last, ev->saved) == 0 || (!force && now - ev->saved_ms < SAVE_MS))
		return;
	int n = snprintf(line, sizeof(line), "%s\n", ev->last);
	if (pwrite(ev->fd, line, (size_t)n, 0) == n && ftruncate(ev->fd, n) == 0) {
		snprintf(ev->saved, sizeof(ev->saved), "%s", ev->last);
		ev->saved_ms = now;
	} else if (!ev->warned_save) {
		ev->warned_save = true;
		log_warn("events: cannot write %s: %s (a restart starts from the stream's end)", ev->path, strerror(errno));
	}
}

static void count(struct eg_events *ev, const char *type, const char *result)
{
	eg_metric_inc(ev->d->metrics, "edgegate_events_total", "type", type, "result", result, 1);
}

/* --- applying one event ---------------------------------------------------------------- */

static const redisReply *field(const redisReply *kv, const char *name)
{
	for (size_t i = 0; i + 1 < kv->elements; i += 2)
		if (kv->element[i]->type == REDIS_REPLY_STRING && strcmp(kv->element[i]->str, name) == 0 &&
		    kv->element[i + 1]->type == REDIS_REPLY_STRING)
			return kv->element[i + 1];
	return NULL;
}

static void apply(struct eg_events *ev, const redisReply *kv)
{
	struct eg_daemon *d = ev->d;
	const redisReply *t = field(kv, "t"), *k = field(kv, "k"), *v = field(kv, "v"), *n = field(kv, "n");

	if (!t || !k || strlen(k->str) != k->len) {
		bump(ev, &ev->ignored);
		count(ev, "malformed", "ignored");
		return;
	}
	if (n && strcmp(n->str, ev->node) == 0) {
		bump(ev, &ev->own);
		return;
	}
	pthread_mutex_lock(&ev->mu);
	ev->last_event_unix = now_realtime_s();
	pthread_mutex_unlock(&ev->mu);
	int rc = -1;
	if (strcmp(t->str, "revoke") == 0) {
		json_t *j = v ? json_loadb(v->str, v->len, JSON_REJECT_DUPLICATES, NULL) : NULL;
		rc = eg_revoke_remote(d, k->str, json_string_value(json_object_get(j, "reason")),
				      (int64_t)json_integer_value(json_object_get(j, "at")));
		json_decref(j);
	} else if (strcmp(t->str, "ban") == 0 && v) {
		rc = eg_abuse_remote_ban(d, k->str, v->str, v->len);
	} else if (strcmp(t->str, "unban") == 0) {
		rc = eg_abuse_remote_unban(d, k->str);
	} else if (strcmp(t->str, "deny") == 0 || strcmp(t->str, "undeny") == 0) {
		/* no gate here: nothing to apply (bans still hold in userspace) */
		rc = d->gate ? eg_gate_apply_remote(d->gate, t->str[0] == 'd', k->str, v ? v->str : NULL, v ? v->len : 0)
			     : 0;
	}
	if (rc < 0) {
		bump(ev, &ev->ignored);
		count(ev, t->str, "ignored");
		return;
	}
	bump(ev, &ev->applied);
	count(ev, t->str, rc ? "applied" : "nothing_here");
}

/* --- resync ------------------------------------------------------------------------------ */

static void resync(struct eg_events *ev, const char *why)
{
	struct eg_daemon *d = ev->d;
	uint64_t ms = 0, seq = 0, t0 = now_mono_ns();

	id_parse(ev->last, &ms, &seq);
	int64_t since = (int64_t)(ms / 1000) - RESYNC_SLACK_S;
	long nr = eg_revoke_resync(d, since > 0 ? since : 0);
	long nb = eg_abuse_sync(d);
	long dl = 0, da = d->gate ? eg_gate_resync(d->gate, &dl) : 0;
	bump(ev, &ev->resyncs);
	eg_metric_inc(d->metrics, "edgegate_sync_total", "what", "stream", "result", "resync", 1);
	if (d->gate)
		eg_metric_inc(d->metrics, "edgegate_sync_total", "what", "deny", "result", "removed", (double)dl);
	log_warn("events: %s: read the revocation, ban and deny records whole (%ld sessions, %ld bans acted on "
		 "here; %ld deny/allow entries applied, %ld lifted%s) in %.1f ms",
		 why, nr, nb, da > 0 ? da : 0, dl, da < 0 ? ", deny records unreadable" : "",
		 (double)(now_mono_ns() - t0) / 1e6);
}

static const redisReply *xinfo_field(const redisReply *r, const char *name)
{
	for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0)
			return r->element[i + 1];
	return NULL;
}

/* Whether the stream ever dropped entries (entries-added > length). */
static bool trimmed(const redisReply *r)
{
	const redisReply *added = xinfo_field(r, "entries-added"), *len = xinfo_field(r, "length");
	if (!added || !len || added->type != REDIS_REPLY_INTEGER || len->type != REDIS_REPLY_INTEGER)
		return true; /* Redis < 7.0: assume so */
	return added->integer > len->integer;
}

/* At every (re)connection: did we miss events the stream no longer holds? -1 on a
 * connection error. */
static int check_gap(struct eg_events *ev, redisContext *c)
{
	redisReply *r = redisCommand(c, "XINFO STREAM %s", ev->stream);
	char why[256] = "";

	ev->checked_ms = mono_ms();
	if (!r)
		return -1;
	if (r->type == REDIS_REPLY_ERROR) {
		/* no stream at all: nothing was ever published, or Redis lost its data */
		if (strcmp(ev->last, "0-0") != 0)
			snprintf(why, sizeof(why), "the event stream is gone (Redis restarted without its data?)");
		set_last(ev, "0-0");
	} else {
		const redisReply *lg = xinfo_field(r, "last-generated-id");
		const redisReply *md = xinfo_field(r, "max-deleted-entry-id");
		const redisReply *fe = xinfo_field(r, "first-entry");
		const redisReply *ln = xinfo_field(r, "length");
		if (lg && lg->type == REDIS_REPLY_STRING && id_cmp(ev->last, lg->str) > 0) {
			snprintf(why, sizeof(why), "the event stream went back from %s to %s (Redis lost data?)",
				 ev->last, lg->str);
			set_last(ev, "0-0");
		} else if (md && md->type == REDIS_REPLY_STRING && id_cmp(md->str, ev->last) > 0) {
			snprintf(why, sizeof(why), "events after %s were deleted from the stream (up to %s)", ev->last,
				 md->str);
		} else if (fe && fe->type == REDIS_REPLY_ARRAY && fe->elements == 2 &&
			   fe->element[0]->type == REDIS_REPLY_STRING && id_cmp(fe->element[0]->str, ev->last) > 0 &&
			   trimmed(r)) {
			/* Trimming (MAXLEN ~) does not move max-deleted-entry-id: the oldest entry kept is
			 * newer than ours and entries were dropped. (If ours was the very last one
			 * dropped, this resync was not needed; an up-to-date node holds the newest id,
			 * which is never trimmed.) */
			snprintf(why, sizeof(why), "events after %s were trimmed from the stream (it starts at %s)",
				 ev->last, fe->element[0]->str);
		} else if (ln && ln->type == REDIS_REPLY_INTEGER && ln->integer == 0 && lg &&
			   lg->type == REDIS_REPLY_STRING && id_cmp(lg->str, ev->last) > 0) {
			/* emptied (XTRIM MAXLEN 0): every entry after ours is gone */
			snprintf(why, sizeof(why), "events after %s were trimmed from the stream (it is empty, up to %s)",
				 ev->last, lg->str);
		}
	}
	const redisReply *lg = r->type == REDIS_REPLY_ARRAY ? xinfo_field(r, "last-generated-id") : NULL;
	char upto[64] = "";
	if (lg && lg->type == REDIS_REPLY_STRING)
		snprintf(upto, sizeof(upto), "%s", lg->str);
	freeReplyObject(r);
	if (!why[0])
		return 0;
	/* The records are read after this XINFO: they hold every event up to the newest
	 * one it reported, so following resumes after that one. */
	resync(ev, why);
	if (upto[0])
		set_last(ev, upto);
	return 1;
}

/* --- the thread -------------------------------------------------------------------------- */

static void nap(struct eg_events *ev, int ms)
{
	for (int i = 0; i < ms / 20 && !ev->stop; i++)
		usleep(20000);
}

static void read_batch(struct eg_events *ev, redisReply *r)
{
	/* [[stream, [[id, [f, v, ...]], ...]]] */
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_ARRAY ||
	    r->element[0]->elements != 2)
		return;
	const redisReply *entries = r->element[0]->element[1];
	for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
		const redisReply *e = entries->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
			continue;
		if (e->element[1]->type == REDIS_REPLY_ARRAY)
			apply(ev, e->element[1]);
		set_last(ev, e->element[0]->str);
	}
}

static void *follow(void *arg)
{
	struct eg_events *ev = arg;
	redisContext *c = NULL;
	char err[256];
	bool warned = false;

	while (!ev->stop) {
		if (!c) {
			/* During an outage the store's prober looks for the master (every 100 ms,
			 * backing off to 1 s with sentinels): dialling here too would only add to
			 * the load on Redis and the sentinels. */
			if (eg_store_redis_down_since_ms(ev->impl)) {
				nap(ev, RETRY_MS / 2);
				continue;
			}
			c = eg_store_redis_dial(ev->impl, ev->timeout_ms, err, sizeof(err));
			if (!c) {
				if (!warned)
					log_debug("events: cannot follow the stream yet: %s", err);
				warned = true;
				/* an outage even if no verdict noticed it yet: the prober (which backs
				 * off with sentinels) looks for the master from now on, not this thread */
				eg_store_redis_report_down(ev->impl, err);
				nap(ev, RETRY_MS);
				continue;
			}
			warned = false;
			bump(ev, &ev->reconnects);
			/* the blocking read waits BLOCK_MS on the server, then answers */
			struct timeval tv = { (BLOCK_MS + ev->timeout_ms) / 1000, ((BLOCK_MS + ev->timeout_ms) % 1000) * 1000 };
			redisSetTimeout(c, tv);
			if (check_gap(ev, c) < 0) {
				redisFree(c);
				c = NULL;
				continue;
			}
			set_connected(ev, true);
		}
		redisReply *r = redisCommand(c, "XREAD COUNT %d BLOCK %d STREAMS %s %s", BATCH, BLOCK_MS, ev->stream,
					     ev->last);
		if (!r || r->type == REDIS_REPLY_ERROR) {
			if (r)
				log_warn("events: XREAD: %s", r->str);
			freeReplyObject(r);
			redisFree(c);
			c = NULL;
			set_connected(ev, false);
			nap(ev, RETRY_MS);
			continue;
		}
		if (r->type != REDIS_REPLY_NIL) {
			/* Before applying: were events between our id and this batch trimmed away
			 * (this process was frozen or slow)? One XINFO per batch: batches grow
			 * when events come fast, so this stays a fraction of the events. */
			int gap = check_gap(ev, c);
			if (gap < 0) {
				freeReplyObject(r);
				redisFree(c);
				c = NULL;
				set_connected(ev, false);
				continue;
			}
			if (gap == 0)
				read_batch(ev, r); /* else: the resync covered it */
		}
		freeReplyObject(r);
		save_id(ev, false);
	}
	if (c)
		redisFree(c);
	save_id(ev, true);
	return NULL;
}

/* --- admin, lifecycle ----------------------------------------------------------------------- */

static json_t *adm_events(struct eg_daemon *d, const json_t *req, const char **err)
{
	struct eg_events *ev = d->events;

	(void)req;
	if (!ev)
		return json_pack("{s:b}", "enabled", 0);
	/* a consistent copy: the events thread writes these while this runs */
	pthread_mutex_lock(&ev->mu);
	json_t *out = json_pack("{s:b, s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "enabled", 1, "following",
				ev->connected, "stream", ev->stream, "last_id", ev->last, "applied",
				(json_int_t)ev->applied, "own", (json_int_t)ev->own, "ignored", (json_int_t)ev->ignored,
				"resyncs", (json_int_t)ev->resyncs, "connections", (json_int_t)ev->reconnects,
				"last_event_unix", (json_int_t)ev->last_event_unix);
	pthread_mutex_unlock(&ev->mu);
	return out;
}

/* The stream's newest id now ("0-0" when empty or absent); -1 on error. */
static int stream_tail(struct eg_events *ev, char *out, size_t len)
{
	char err[256];
	redisContext *c = eg_store_redis_dial(ev->impl, ev->timeout_ms > 1000 ? ev->timeout_ms : 1000, err, sizeof(err));
	if (!c)
		return -1;
	redisReply *r = redisCommand(c, "XREVRANGE %s + - COUNT 1", ev->stream);
	int rc = -1;
	if (r && r->type == REDIS_REPLY_ARRAY) {
		rc = 0;
		snprintf(out, len, "0-0");
		if (r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
		    r->element[0]->element[0]->type == REDIS_REPLY_STRING)
			snprintf(out, len, "%s", r->element[0]->element[0]->str);
	}
	freeReplyObject(r);
	redisFree(c);
	return rc;
}

int eg_events_init(struct eg_daemon *d, char *err, size_t errlen)
{
	if (!d->store || strcmp(eg_store_backend(d->store), "redis") != 0)
		return 0;
	struct eg_events *ev = xcalloc(1, sizeof(*ev));
	const char *state = d->cfg->state_dir ? d->cfg->state_dir : "/var/lib/edgegate";
	size_t len = 0;

	ev->d = d;
	pthread_mutex_init(&ev->mu, NULL);
	ev->impl = eg_store_impl(d->store);
	ev->timeout_ms = d->cfg->store.timeout_ms > 0 ? (int)d->cfg->store.timeout_ms : 300;
	snprintf(ev->stream, sizeof(ev->stream), "%s", eg_store_redis_stream(ev->impl));
	snprintf(ev->node, sizeof(ev->node), "%s", eg_store_node(d->store));
	ev->path = xasprintf("%s/stream.id", state);
	ev->fd = open(ev->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (ev->fd < 0)
		log_warn("events: cannot open %s: %s (a restart starts from the stream's end)", ev->path, strerror(errno));
	char *saved = read_file(ev->path, 256, &len);
	uint64_t ms, seq;
	if (saved) {
		saved[strcspn(saved, "\r\n")] = 0;
		if (id_parse(saved, &ms, &seq) == 0)
			snprintf(ev->last, sizeof(ev->last), "%s", saved);
		free(saved);
	}
	if (ev->last[0]) {
		log_info("events: catching up from stream id %s (%s)", ev->last, ev->path);
	} else if (stream_tail(ev, ev->last, sizeof(ev->last)) != 0) {
		/* bans and deny entries were just read whole; revocations from before this
		 * start concern no session or flow in this process */
		snprintf(err, errlen, "store.redis: cannot read the event stream %s", ev->stream);
		if (ev->fd >= 0)
			close(ev->fd);
		free(ev->path);
		free(ev);
		return -1;
	}
	ev->saved[0] = 0; /* written by the first save */
	d->events = ev;
	eg_metric_help(d->metrics, "edgegate_events_total", "counter",
		       "events of other nodes read from the shared store's stream, by type and result");
	eg_admin_register("events", adm_events);
	return 0;
}

int eg_events_start(struct eg_daemon *d)
{
	struct eg_events *ev = d->events;

	if (!ev)
		return 0;
	if (pthread_create(&ev->th, NULL, follow, ev) != 0)
		return -1;
	ev->running = true;
	return 0;
}

void eg_events_free(struct eg_daemon *d)
{
	struct eg_events *ev = d ? d->events : NULL;

	if (!ev)
		return;
	ev->stop = true;
	if (ev->running)
		pthread_join(ev->th, NULL);
	d->events = NULL;
	if (ev->fd >= 0)
		close(ev->fd);
	free(ev->path);
	pthread_mutex_destroy(&ev->mu);
	free(ev);
}
