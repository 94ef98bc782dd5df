/* metrics.h - counters and histograms, rendered as Prometheus text on /metrics.
 * Lock-free (atomic adds); a fixed set of series, each module adds its own. */
#ifndef EG_METRICS_H
#define EG_METRICS_H

#include <stdint.h>
#include <stddef.h>

struct eg_metrics;

struct eg_metrics *eg_metrics_new(void);
void eg_metrics_free(struct eg_metrics *m);

/* Counter with up to two label pairs, e.g.
 * eg_metric_inc(m, "edgegate_verdicts_total", "result", "deny", "reason", "expired", 1).
 * Series are created on first use (bounded: label values must come from a fixed set). */
void eg_metric_inc(struct eg_metrics *m, const char *name, const char *l1, const char *v1,
		   const char *l2, const char *v2, uint64_t by);
/* The same, for hot paths whose every string argument is immutable for the life of the
 * process (string literals, constant tables; never a buffer, never config that a reload
 * frees): a repeated call with the same pointers finds its series without reading them. */
void eg_metric_inc_lit(struct eg_metrics *m, const char *name, const char *l1, const char *v1,
		       const char *l2, const char *v2, uint64_t by);
/* Gauge: set an absolute value. */
void eg_metric_set(struct eg_metrics *m, const char *name, const char *l1, const char *v1,
		   double value);
/* Histogram observation in seconds (fixed buckets 50us .. 10s). */
void eg_metric_observe(struct eg_metrics *m, const char *name, const char *l1, const char *v1,
		       double seconds);
/* The same with immutable strings only (see eg_metric_inc_lit). */
void eg_metric_observe_lit(struct eg_metrics *m, const char *name, const char *l1, const char *v1,
			   double seconds);
/* One call site's series, for the verdict's few metrics: the caller keeps one per thread
 * (static __thread) at a site whose name and label names never change and whose values are
 * immutable (as for eg_metric_inc_lit). A call with the values the site saw last is two
 * pointer compares and the add, without the front cache's hashing. Zero-initialised. */
struct eg_metric_site {
	uint64_t gen; /* the metrics instance the series is of; 0: none yet */
	const char *v1, *v2;
	void *series;
};
void eg_metric_inc_site(struct eg_metric_site *site, struct eg_metrics *m, const char *name, const char *l1,
			const char *v1, const char *l2, const char *v2, uint64_t by);
void eg_metric_observe_site(struct eg_metric_site *site, struct eg_metrics *m, const char *name, const char *l1,
			    const char *v1, double seconds);
/* Declares help text (optional) and type for a family. */
void eg_metric_help(struct eg_metrics *m, const char *name, const char *type, const char *help);

/* Renders everything; caller frees. */
char *eg_metrics_render(struct eg_metrics *m, size_t *len);

#endif
