/* jwks.c - verification keys from a JWKS file or URL, cached and refreshed.
 *
 * The current set is an immutable, refcounted eg_jwks swapped under a mutex, so
 * readers on MHD threads only take the lock long enough to grab a reference.
 * URL fetches run without the lock; one at a time (`fetching`), and callers that
 * arrive meanwhile wait on `done` for that fetch's generation to finish. */
#include "jwks.h"
#include "jose.h"
#include "log.h"
#include "loopback.h"
#include "metrics.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define JWKS_MAX_BODY (1 << 20)
#define FILE_CHECK_NS 1000000000ull /* stat the file at most once per second */
#define NS 1000000000ull
#define REFETCH_BURST 2.0 /* unknown-kid refetches a burst may spend at once */
#define NEG_KIDS 32       /* kids remembered as absent after a fetch that lacked them */

struct eg_keysource {
	char *file, *url;
	int64_t refresh_s, min_refetch_s, timeout_ms;
	struct eg_metrics *metrics;

	pthread_mutex_t mu;
	pthread_cond_t done;      /* a fetch finished (fetch_gen advanced) or stop */
	struct eg_jwks *cur;      /* never NULL */

	/* file source: identity of the file last read */
	struct timespec f_mtime;
	off_t f_size;
	ino_t f_ino;
	uint64_t f_checked_ns;

	/* URL source */
	char *ca_file;
	bool fetching;
	uint64_t fetch_gen;
	bool last_failed;
	/* Unknown-kid refetches. The first one after a scheduled fetch (start-up or the
	 * periodic refresh) always goes: that is a key rotation, possibly seconds after
	 * start-up. Later ones spend tokens of a bucket refilled at one per
	 * min_refetch_s, and a kid that a fresh fetch did not contain is not asked for
	 * again for a while, so a flood of made-up kids costs few fetches. */
	bool free_refetch;
	double tokens;
	uint64_t tokens_ns;
	struct {
		char kid[128];
		uint64_t until_ns;
	} neg[NEG_KIDS];
	unsigned neg_next;

	pthread_t thr;
	bool thr_running, stop;

	struct eg_keysource_stats st;
};

static void count_fetch(struct eg_keysource *ks, bool ok)
{
	if (ks->metrics)
		eg_metric_inc(ks->metrics, "edgegate_jwks_fetches_total", "result", ok ? "ok" : "error",
			      NULL, NULL, 1);
}

/* Swaps in a new set; called with mu held. */
static void install(struct eg_keysource *ks, struct eg_jwks *set)
{
	eg_jwks_unref(ks->cur);
	ks->cur = set;
	ks->st.keys = (unsigned)eg_jwks_count(set);
	ks->st.last_ok_unix = now_realtime_s();
}

static struct eg_jwks *parse_set(const char *what, const char *body, size_t len, char *err,
				 size_t errlen)
{
	char warn[512];
	struct eg_jwks *s = eg_jwks_parse(body, len, err, errlen, warn, sizeof(warn));

	if (s && warn[0])
		log_warn("jwks %s: skipped keys: %s", what, warn);
	return s;
}

/* --- file source ---------------------------------------------------------------------- */

/* Re-reads the file when its identity changed; mu held. A bad new file keeps the old set. */
static int file_reload(struct eg_keysource *ks, char *err, size_t errlen, bool force)
{
	struct stat st;
	uint64_t now = now_mono_ns();
	struct eg_jwks *set;
	char e[256];
	size_t len;
	char *body;

	if (!force && ks->f_checked_ns && now - ks->f_checked_ns < FILE_CHECK_NS)
		return 0;
	ks->f_checked_ns = now;
	if (stat(ks->file, &st) != 0) {
		snprintf(err, errlen, "jwks_file %s: %s", ks->file, strerror(errno));
		return -1;
	}
	if (!force && st.st_mtim.tv_sec == ks->f_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == ks->f_mtime.tv_nsec && st.st_size == ks->f_size &&
	    st.st_ino == ks->f_ino)
		return 0;
	/* remember this version even if it is bad, so a broken file is not re-parsed every second */
	ks->f_mtime = st.st_mtim;
	ks->f_size = st.st_size;
	ks->f_ino = st.st_ino;
	body = read_file(ks->file, JWKS_MAX_BODY, &len);
	if (!body) {
		snprintf(err, errlen, "jwks_file %s: %s", ks->file, strerror(errno));
		ks->st.fetch_fail++;
		count_fetch(ks, false);
		return -1;
	}
	set = parse_set(ks->file, body, len, e, sizeof(e));
	free(body);
	if (!set) {
		snprintf(err, errlen, "jwks_file %s: %s", ks->file, e);
		ks->st.fetch_fail++;
		count_fetch(ks, false);
		return -1;
	}
	install(ks, set);
	ks->st.fetch_ok++;
	count_fetch(ks, true);
	return 0;
}

/* --- URL source ------------------------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* https anywhere; plain http only to loopback (loopback.h). 0 ok. */
static int check_url(const char *url, bool *is_http, char *err, size_t errlen)
{
	if (eg_url_https_or_loopback(url, is_http) == 0)
		return 0;
	snprintf(err, errlen, "jwks_url: must be https (http only to a loopback address)");
	return -1;
}

struct body {
	char *p;
	size_t len;
};

static size_t on_data(char *d, size_t sz, size_t n, void *arg)
{
	struct body *b = arg;
	size_t add = sz * n;

	if (add > JWKS_MAX_BODY - b->len)
		return 0; /* aborts the transfer: body too large */
	b->p = realloc(b->p, b->len + add + 1);
	if (!b->p)
		abort();
	memcpy(b->p + b->len, d, add);
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

/* One GET; the parsed set or NULL (reason logged). Runs without mu. */
static struct eg_jwks *url_fetch(struct eg_keysource *ks)
{
	bool http = false;
	struct body b = { NULL, 0 };
	struct eg_jwks *set = NULL;
	char err[CURL_ERROR_SIZE + 64] = "", e[256];
	long status = 0;
	CURL *c;
	CURLcode rc;

	if (check_url(ks->url, &http, err, sizeof(err))) {
		log_warn("%s", err);
		return NULL;
	}
	c = curl_easy_init();
	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_URL, ks->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, http ? "http" : "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ks->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)ks->timeout_ms);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)JWKS_MAX_BODY);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "edgegate-jwks/1");
	if (ks->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, ks->ca_file);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		log_warn("jwks fetch %s failed: %s", ks->url, err[0] ? err : curl_easy_strerror(rc));
	} else if (status != 200) {
		log_warn("jwks fetch %s: HTTP status %ld", ks->url, status);
	} else if (!(set = parse_set(ks->url, b.p ? b.p : "", b.len, e, sizeof(e)))) {
		log_warn("jwks fetch %s: %s; keeping the previous key set", ks->url, e);
	}
	free(b.p);
	return set;
}

/* --- unknown-kid throttle (mu held) ------------------------------------------------ */

static uint64_t neg_ttl_ns(const struct eg_keysource *ks)
{
	return (uint64_t)ks->min_refetch_s * NS;
}

static bool kid_known_absent(const struct eg_keysource *ks, const char *kid, uint64_t now)
{
	for (unsigned i = 0; i < NEG_KIDS; i++)
		if (ks->neg[i].until_ns > now && strcmp(ks->neg[i].kid, kid) == 0)
			return true;
	return false;
}

static void kid_note_absent(struct eg_keysource *ks, const char *kid, uint64_t now)
{
	if (strlen(kid) >= sizeof(ks->neg[0].kid))
		return;
	snprintf(ks->neg[ks->neg_next].kid, sizeof(ks->neg[0].kid), "%s", kid);
	ks->neg[ks->neg_next].until_ns = now + neg_ttl_ns(ks);
	ks->neg_next = (ks->neg_next + 1) % NEG_KIDS;
}

static bool take_refetch(struct eg_keysource *ks, uint64_t now)
{
	double per_ns = 1.0 / ((double)ks->min_refetch_s * (double)NS);

	ks->tokens += (double)(now - ks->tokens_ns) * per_ns;
	if (ks->tokens > REFETCH_BURST)
		ks->tokens = REFETCH_BURST;
	ks->tokens_ns = now;
	if (ks->free_refetch) {
		ks->free_refetch = false;
		return true;
	}
	if (ks->tokens < 1.0)
		return false;
	ks->tokens -= 1.0;
	return true;
}

/* Runs one fetch, or waits for the one in flight. kid: the unknown-kid path (throttled);
 * NULL: a scheduled fetch. Returns a new reference to the current set. */
static struct eg_jwks *url_fetch_coalesced(struct eg_keysource *ks, const char *kid)
{
	struct eg_jwks *set, *r;
	uint64_t now, gen;

	pthread_mutex_lock(&ks->mu);
	if (kid && eg_jwks_has_kid(ks->cur, kid))
		goto current; /* someone else's fetch already brought it */
	if (ks->fetching) {
		gen = ks->fetch_gen;
		while (ks->fetch_gen == gen && !ks->stop)
			pthread_cond_wait(&ks->done, &ks->mu);
		goto current;
	}
	now = now_mono_ns();
	if (kid && (kid_known_absent(ks, kid, now) || !take_refetch(ks, now))) {
		ks->st.refetch_throttled++;
		goto current;
	}
	ks->fetching = true;
	pthread_mutex_unlock(&ks->mu);

	set = url_fetch(ks);

	pthread_mutex_lock(&ks->mu);
	if (set) {
		install(ks, set);
		ks->st.fetch_ok++;
		if (!kid)
			ks->free_refetch = true;
		else if (!eg_jwks_has_kid(set, kid))
			kid_note_absent(ks, kid, now_mono_ns());
	} else {
		ks->st.fetch_fail++;
	}
	ks->last_failed = !set;
	count_fetch(ks, set != NULL);
	ks->fetching = false;
	ks->fetch_gen++;
	pthread_cond_broadcast(&ks->done);
current:
	r = eg_jwks_ref(ks->cur);
	pthread_mutex_unlock(&ks->mu);
	return r;
}

/* --- public ----------------------------------------------------------------------------- */

struct eg_keysource *eg_keysource_new(const struct eg_keysource_opts *o, char *err, size_t errlen)
{
	struct eg_keysource *ks;
	pthread_condattr_t ca;
	bool http;

	if (err && errlen)
		err[0] = '\0';
	if (!o || (!o->file == !o->url)) {
		snprintf(err, errlen, "jwks: exactly one of jwks_file and jwks_url is required");
		return NULL;
	}
	if (o->url) {
		pthread_once(&curl_once, curl_init);
		if (check_url(o->url, &http, err, errlen))
			return NULL;
	}
	ks = xcalloc(1, sizeof(*ks));
	ks->file = o->file ? xstrdup(o->file) : NULL;
	ks->url = o->url ? xstrdup(o->url) : NULL;
	ks->refresh_s = o->refresh_s > 0 ? o->refresh_s : 300;
	ks->min_refetch_s = o->min_refetch_s > 0 ? o->min_refetch_s : 10;
	ks->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 3000;
	ks->ca_file = o->ca_file ? xstrdup(o->ca_file) : NULL;
	ks->tokens = REFETCH_BURST;
	ks->tokens_ns = now_mono_ns();
	ks->metrics = o->metrics;
	pthread_mutex_init(&ks->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ks->done, &ca);
	pthread_condattr_destroy(&ca);
	ks->cur = eg_jwks_parse("{\"keys\":[]}", 11, NULL, 0, NULL, 0);
	if (!ks->cur) {
		snprintf(err, errlen, "jwks: OpenSSL lacks SHA-2 or HMAC");
		eg_keysource_free(ks);
		return NULL;
	}

	if (ks->file) {
		int rc;
		pthread_mutex_lock(&ks->mu);
		rc = file_reload(ks, err, errlen, true);
		pthread_mutex_unlock(&ks->mu);
		if (rc) {
			eg_keysource_free(ks);
			return NULL;
		}
	} else {
		/* a provider that is down at start-up is not fatal: retried later */
		eg_jwks_unref(url_fetch_coalesced(ks, NULL));
	}
	return ks;
}

static void *refresher(void *arg)
{
	struct eg_keysource *ks = arg;
	struct timespec ts;
	int64_t wait_s;

	pthread_mutex_lock(&ks->mu);
	while (!ks->stop) {
		/* after a failure retry sooner than the normal period */
		wait_s = ks->last_failed && ks->min_refetch_s < ks->refresh_s ? ks->min_refetch_s
									      : ks->refresh_s;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)wait_s;
		while (!ks->stop && pthread_cond_timedwait(&ks->done, &ks->mu, &ts) != ETIMEDOUT)
			;
		if (ks->stop)
			break;
		pthread_mutex_unlock(&ks->mu);
		eg_jwks_unref(url_fetch_coalesced(ks, NULL));
		pthread_mutex_lock(&ks->mu);
	}
	pthread_mutex_unlock(&ks->mu);
	return NULL;
}

int eg_keysource_start(struct eg_keysource *ks)
{
	if (!ks->url || ks->thr_running)
		return 0;
	if (pthread_create(&ks->thr, NULL, refresher, ks) != 0)
		return -1;
	ks->thr_running = true;
	return 0;
}

void eg_keysource_free(struct eg_keysource *ks)
{
	if (!ks)
		return;
	if (ks->thr_running) {
		pthread_mutex_lock(&ks->mu);
		ks->stop = true;
		pthread_cond_broadcast(&ks->done);
		pthread_mutex_unlock(&ks->mu);
		pthread_join(ks->thr, NULL);
	}
	eg_jwks_unref(ks->cur);
	pthread_cond_destroy(&ks->done);
	pthread_mutex_destroy(&ks->mu);
	free(ks->file);
	free(ks->url);
	free(ks->ca_file);
	free(ks);
}

struct eg_jwks *eg_keysource_get(struct eg_keysource *ks)
{
	struct eg_jwks *r;
	char err[256];

	pthread_mutex_lock(&ks->mu);
	if (ks->file && file_reload(ks, err, sizeof(err), false))
		log_warn("%s; keeping the previous key set", err);
	r = eg_jwks_ref(ks->cur);
	pthread_mutex_unlock(&ks->mu);
	return r;
}

struct eg_jwks *eg_keysource_refetch(struct eg_keysource *ks, const char *kid)
{
	if (ks->file)
		return eg_keysource_get(ks);
	return url_fetch_coalesced(ks, kid ? kid : "");
}

void eg_keysource_stats(struct eg_keysource *ks, struct eg_keysource_stats *out)
{
	pthread_mutex_lock(&ks->mu);
	*out = ks->st;
	pthread_mutex_unlock(&ks->mu);
}
