/* metrics.c - Prometheus text exposition of counters, gauges and histograms.
 *
 * Series live in an open-addressed table that only grows: a lookup on the hot path is
 * a hash, a lock-free probe and an atomic add. Creation takes a mutex. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SLOTS 1024 /* power of two; label values come from fixed sets */
#define NBUCKETS 16

static const double bucket_le[NBUCKETS] = { 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
					    0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10 };

enum kind { K_COUNTER, K_GAUGE, K_HIST };

struct series {
	char *key;    /* name{labels} - the identity */
	char *name;
	char *labels; /* "a=\"b\",c=\"d\"" or "" */
	enum kind kind;
	_Atomic uint64_t count;         /* counter value, histogram count */
	_Atomic uint64_t sum_ns;        /* histogram sum in ns */
	_Atomic uint64_t bucket[NBUCKETS];
	_Atomic uint64_t gauge_bits;    /* double */
	char *raw[5]; /* name, l1, v1, l2, v2 as given (NULL when absent), for the front cache */
};

struct family {
	char *name;
	char *type;
	char *help;
};

struct eg_metrics {
	_Atomic(struct series *) slot[SLOTS];
	uint64_t gen; /* identifies this instance in the per-thread front caches */
	pthread_mutex_t lock;
	struct family fam[128];
	size_t n_fam;
};

static _Atomic uint64_t metrics_gen;

struct eg_metrics *eg_metrics_new(void)
{
	struct eg_metrics *m = xcalloc(1, sizeof(*m));
	m->gen = atomic_fetch_add(&metrics_gen, 1) + 1;
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

void eg_metrics_free(struct eg_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < SLOTS; i++) {
		struct series *s = atomic_load(&m->slot[i]);
		if (s) {
			free(s->key);
			free(s->name);
			free(s->labels);
			for (int k = 0; k < 5; k++)
				free(s->raw[k]);
			free(s);
		}
	}
	for (size_t i = 0; i < m->n_fam; i++) {
		free(m->fam[i].name);
		free(m->fam[i].type);
		free(m->fam[i].help);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

/* Label values are escaped per the exposition format (backslash, quote, newline). */
static void append_label(char *buf, size_t len, const char *k, const char *v)
{
	size_t n = strlen(buf);
	if (n && n < len - 1)
		buf[n++] = ',';
	n += (size_t)snprintf(buf + n, len - n, "%s=\"", k);
	for (; *v && n < len - 3; v++) {
		if (*v == '\\' || *v == '"')
			buf[n++] = '\\', buf[n++] = *v;
		else if (*v == '\n')
			buf[n++] = '\\', buf[n++] = 'n';
		else
			buf[n++] = *v;
	}
	if (n < len - 1)
		buf[n++] = '"';
	buf[n < len ? n : len - 1] = '\0';
}

static struct series *lookup(struct eg_metrics *m, enum kind kind, const char *name, const char *l1,
			     const char *v1, const char *l2, const char *v2)
{
	char labels[256] = "";
	if (l1 && v1)
		append_label(labels, sizeof(labels), l1, v1);
	if (l2 && v2)
		append_label(labels, sizeof(labels), l2, v2);
	char key[384];
	snprintf(key, sizeof(key), "%s{%s}", name, labels);
	uint64_t h = fnv1a(key);
	for (size_t probe = 0; probe < SLOTS; probe++) {
		size_t i = (h + probe) & (SLOTS - 1);
		struct series *s = atomic_load_explicit(&m->slot[i], memory_order_acquire);
		if (!s) {
			pthread_mutex_lock(&m->lock);
			s = atomic_load(&m->slot[i]);
			if (!s) {
				s = xcalloc(1, sizeof(*s));
				s->key = xstrdup(key);
				s->name = xstrdup(name);
				s->labels = xstrdup(labels);
				s->kind = kind;
				const char *raw[5] = { name, l1, v1, l2, v2 };
				for (int k = 0; k < 5; k++)
					s->raw[k] = raw[k] ? xstrdup(raw[k]) : NULL;
				atomic_store_explicit(&m->slot[i], s, memory_order_release);
			}
			pthread_mutex_unlock(&m->lock);
		}
		if (strcmp(s->key, key) == 0)
			return s;
	}
	return NULL; /* table full: the metric is dropped rather than blocking the request */
}

/* A per-thread front cache keyed by the argument pointers (callers pass literals and
 * static strings): a hit skips formatting and hashing the series key. Hits are verified
 * by content, so a reused buffer with new contents can never alias another series. */
struct front {
	uint64_t gen;
	const char *arg[5];
	struct series *s;
};
static __thread struct front front_cache[64];

static bool same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* lit: every string argument is immutable for the life of the process (a literal or a
 * constant table), so the same pointers are the same strings and a hit needs no strcmp:
 * a front-cache hit then costs a few pointer compares instead of up to five strcmp's. */
static struct series *lookup_fast(struct eg_metrics *m, enum kind kind, const char *name, const char *l1,
				  const char *v1, const char *l2, const char *v2, bool lit)
{
	const char *arg[5] = { name, l1, v1, l2, v2 };
	uintptr_t h = (uintptr_t)name ^ ((uintptr_t)v1 * 31) ^ ((uintptr_t)v2 * 131);
	struct front *f = &front_cache[(h >> 3) & 63];
	if (f->gen == m->gen && f->s) {
		bool hit = true;
		for (int k = 0; k < 5 && hit; k++)
			hit = f->arg[k] == arg[k] && (lit || same(f->s->raw[k], arg[k]));
		if (hit)
			return f->s;
	}
	struct series *s = lookup(m, kind, name, l1, v1, l2, v2);
	if (s) {
		f->gen = m->gen;
		memcpy(f->arg, arg, sizeof(arg));
		f->s = s;
	}
	return s;
}

static void inc(struct eg_metrics *m, const char *name, const char *l1, const char *v1, const char *l2,
		const char *v2, uint64_t by, bool lit)
{
	if (!m)
		return;
	struct series *s = lookup_fast(m, K_COUNTER, name, l1, v1, l2, v2, lit);
	if (s)
		atomic_fetch_add_explicit(&s->count, by, memory_order_relaxed);
}

void eg_metric_inc(struct eg_metrics *m, const char *name, const char *l1, const char *v1, const char *l2,
		   const char *v2, uint64_t by)
{
	inc(m, name, l1, v1, l2, v2, by, false);
}

void eg_metric_inc_lit(struct eg_metrics *m, const char *name, const char *l1, const char *v1, const char *l2,
		       const char *v2, uint64_t by)
{
	inc(m, name, l1, v1, l2, v2, by, true);
}

void eg_metric_set(struct eg_metrics *m, const char *name, const char *l1, const char *v1, double value)
{
	if (!m)
		return;
	struct series *s = lookup_fast(m, K_GAUGE, name, l1, v1, NULL, NULL, false);
	uint64_t bits;
	memcpy(&bits, &value, sizeof(bits));
	if (s)
		atomic_store_explicit(&s->gauge_bits, bits, memory_order_relaxed);
}

static void observe_series(struct series *s, double seconds);

static void observe(struct eg_metrics *m, const char *name, const char *l1, const char *v1, double seconds, bool lit)
{
	if (!m)
		return;
	struct series *s = lookup_fast(m, K_HIST, name, l1, v1, NULL, NULL, lit);
	if (s)
		observe_series(s, seconds);
}

static void observe_series(struct series *s, double seconds)
{
	for (int i = 0; i < NBUCKETS; i++)
		if (seconds <= bucket_le[i]) {
			atomic_fetch_add_explicit(&s->bucket[i], 1, memory_order_relaxed);
			break;
		}
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum_ns, (uint64_t)(seconds * 1e9), memory_order_relaxed);
}

void eg_metric_observe(struct eg_metrics *m, const char *name, const char *l1, const char *v1, double seconds)
{
	observe(m, name, l1, v1, seconds, false);
}

void eg_metric_observe_lit(struct eg_metrics *m, const char *name, const char *l1, const char *v1, double seconds)
{
	observe(m, name, l1, v1, seconds, true);
}

/* the site's series when it was found for these values in this instance, else looked up */
static struct series *site_series(struct eg_metric_site *site, struct eg_metrics *m, enum kind kind, const char *name,
				  const char *l1, const char *v1, const char *l2, const char *v2)
{
	if (site->gen == m->gen && site->v1 == v1 && site->v2 == v2)
		return site->series;
	struct series *s = lookup_fast(m, kind, name, l1, v1, l2, v2, true);
	if (s)
		*site = (struct eg_metric_site){ m->gen, v1, v2, s };
	return s;
}

void eg_metric_inc_site(struct eg_metric_site *site, struct eg_metrics *m, const char *name, const char *l1,
			const char *v1, const char *l2, const char *v2, uint64_t by)
{
	struct series *s = m ? site_series(site, m, K_COUNTER, name, l1, v1, l2, v2) : NULL;
	if (s)
		atomic_fetch_add_explicit(&s->count, by, memory_order_relaxed);
}

void eg_metric_observe_site(struct eg_metric_site *site, struct eg_metrics *m, const char *name, const char *l1,
			    const char *v1, double seconds)
{
	struct series *s = m ? site_series(site, m, K_HIST, name, l1, v1, NULL, NULL) : NULL;
	if (s)
		observe_series(s, seconds);
}

void eg_metric_help(struct eg_metrics *m, const char *name, const char *type, const char *help)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_fam; i++) {
		if (strcmp(m->fam[i].name, name) == 0) {
			pthread_mutex_unlock(&m->lock);
			return;
		}
	}
	if (m->n_fam < sizeof(m->fam) / sizeof(m->fam[0])) {
		m->fam[m->n_fam].name = xstrdup(name);
		m->fam[m->n_fam].type = xstrdup(type);
		m->fam[m->n_fam].help = xstrdup(help);
		m->n_fam++;
	}
	pthread_mutex_unlock(&m->lock);
}

struct buf {
	char *p;
	size_t len, cap;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap * 2 + (size_t)(n > 0 ? n : 0) + 64;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
}

static int by_key(const void *a, const void *b)
{
	return strcmp((*(struct series *const *)a)->key, (*(struct series *const *)b)->key);
}

static const char *type_name(enum kind k)
{
	return k == K_COUNTER ? "counter" : k == K_GAUGE ? "gauge" : "histogram";
}

static void render_series(struct buf *b, const struct series *s)
{
	/* "{a=\"b\"}" or nothing: an empty label set is written without braces. */
	char lb[272] = "";
	if (s->labels[0])
		snprintf(lb, sizeof(lb), "{%s}", s->labels);
	const char *sep = s->labels[0] ? "," : "";
	if (s->kind == K_COUNTER) {
		bprintf(b, "%s%s %llu\n", s->name, lb, (unsigned long long)atomic_load(&s->count));
	} else if (s->kind == K_GAUGE) {
		uint64_t bits = atomic_load(&s->gauge_bits);
		double v;
		memcpy(&v, &bits, sizeof(v));
		bprintf(b, "%s%s %.17g\n", s->name, lb, v);
	} else {
		uint64_t cum = 0;
		for (int i = 0; i < NBUCKETS; i++) {
			cum += atomic_load(&s->bucket[i]);
			bprintf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", s->name, s->labels, sep, bucket_le[i],
				(unsigned long long)cum);
		}
		uint64_t count = atomic_load(&s->count);
		bprintf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", s->name, s->labels, sep, (unsigned long long)count);
		bprintf(b, "%s_sum%s %.9f\n", s->name, lb, (double)atomic_load(&s->sum_ns) / 1e9);
		bprintf(b, "%s_count%s %llu\n", s->name, lb, (unsigned long long)count);
	}
}

char *eg_metrics_render(struct eg_metrics *m, size_t *len)
{
	struct series *all[SLOTS];
	size_t n = 0;
	for (size_t i = 0; i < SLOTS; i++) {
		struct series *s = atomic_load(&m->slot[i]);
		if (s)
			all[n++] = s;
	}
	qsort(all, n, sizeof(all[0]), by_key);
	struct buf b = { .p = xmalloc(4096), .cap = 4096 };
	b.p[0] = '\0';
	const char *last = "";
	for (size_t i = 0; i < n; i++) {
		if (strcmp(all[i]->name, last) != 0) {
			last = all[i]->name;
			const char *help = NULL;
			pthread_mutex_lock(&m->lock);
			for (size_t f = 0; f < m->n_fam; f++)
				if (strcmp(m->fam[f].name, last) == 0)
					help = m->fam[f].help;
			pthread_mutex_unlock(&m->lock);
			if (help)
				bprintf(&b, "# HELP %s %s\n", last, help);
			bprintf(&b, "# TYPE %s %s\n", last, type_name(all[i]->kind));
		}
		render_series(&b, all[i]);
	}
	*len = b.len;
	return b.p;
}
