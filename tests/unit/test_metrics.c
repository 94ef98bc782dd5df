/* test_metrics.c - Prometheus text exposition: counters with labels, escaping,
 * histograms, gauges, and the per-thread front cache never aliasing two series. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "metrics.h"

static char *render(struct eg_metrics *m)
{
	size_t len;
	char *t = eg_metrics_render(m, &len);
	assert_int_equal(strlen(t), len);
	return t;
}

static void test_counters(void **state)
{
	struct eg_metrics *m = eg_metrics_new();
	eg_metric_help(m, "eg_total", "counter", "a counter");
	eg_metric_inc(m, "eg_total", "result", "allow", "reason", "ok", 1);
	eg_metric_inc(m, "eg_total", "result", "allow", "reason", "ok", 2);
	eg_metric_inc(m, "eg_total", "result", "deny", "reason", "bad", 1);
	eg_metric_inc(m, "eg_plain", NULL, NULL, NULL, NULL, 5);
	char *t = render(m);
	assert_non_null(strstr(t, "# HELP eg_total a counter\n# TYPE eg_total counter\n"));
	assert_non_null(strstr(t, "eg_total{result=\"allow\",reason=\"ok\"} 3\n"));
	assert_non_null(strstr(t, "eg_total{result=\"deny\",reason=\"bad\"} 1\n"));
	assert_non_null(strstr(t, "eg_plain 5\n")); /* no empty braces */
	free(t);
	eg_metrics_free(m);
}

static void test_escaping(void **state)
{
	struct eg_metrics *m = eg_metrics_new();
	eg_metric_inc(m, "eg_esc", "v", "a\"b\\c\nd", NULL, NULL, 1);
	char *t = render(m);
	assert_non_null(strstr(t, "eg_esc{v=\"a\\\"b\\\\c\\nd\"} 1\n"));
	free(t);
	eg_metrics_free(m);
}

static void test_histogram_gauge(void **state)
{
	struct eg_metrics *m = eg_metrics_new();
	eg_metric_observe(m, "eg_lat_seconds", NULL, NULL, 0.0003);
	eg_metric_observe(m, "eg_lat_seconds", NULL, NULL, 2.0);
	eg_metric_set(m, "eg_gauge", "k", "v", 1.5);
	char *t = render(m);
	assert_non_null(strstr(t, "# TYPE eg_lat_seconds histogram\n"));
	assert_non_null(strstr(t, "eg_lat_seconds_bucket{le=\"0.0005\"} 1\n"));
	assert_non_null(strstr(t, "eg_lat_seconds_bucket{le=\"2.5\"} 2\n"));
	assert_non_null(strstr(t, "eg_lat_seconds_bucket{le=\"+Inf\"} 2\n"));
	assert_non_null(strstr(t, "eg_lat_seconds_count 2\n"));
	assert_non_null(strstr(t, "eg_gauge{k=\"v\"} 1.5\n"));
	free(t);
	eg_metrics_free(m);
}

/* The same buffer address with new contents must reach a different series, and a new
 * instance at a recycled address must not see the old one's series. */
static void test_front_cache(void **state)
{
	struct eg_metrics *m = eg_metrics_new();
	char buf[16];
	strcpy(buf, "one");
	eg_metric_inc(m, "eg_fc", "k", buf, NULL, NULL, 1);
	strcpy(buf, "two");
	eg_metric_inc(m, "eg_fc", "k", buf, NULL, NULL, 1);
	eg_metric_inc(m, "eg_fc", "k", buf, NULL, NULL, 1);
	char *t = render(m);
	assert_non_null(strstr(t, "eg_fc{k=\"one\"} 1\n"));
	assert_non_null(strstr(t, "eg_fc{k=\"two\"} 2\n"));
	free(t);
	eg_metrics_free(m);
	for (int i = 0; i < 4; i++) {
		m = eg_metrics_new();
		eg_metric_inc(m, "eg_fc", "k", buf, NULL, NULL, 1);
		t = render(m);
		assert_non_null(strstr(t, "eg_fc{k=\"two\"} 1\n"));
		free(t);
		eg_metrics_free(m);
	}
	eg_metric_inc(NULL, "eg_fc", NULL, NULL, NULL, NULL, 1); /* NULL-safe */
	eg_metric_help(NULL, "eg_fc", "counter", "x");
}

/* The _lit calls count into the same series as the others (by content), whichever comes
 * first, and a second metrics instance is not confused with the first. */
static void test_literal_calls(void **state)
{
	char name[] = "eg_lit_total", v[] = "allow"; /* other pointers, same content */
	for (int round = 0; round < 2; round++) {
		struct eg_metrics *m = eg_metrics_new();
		eg_metric_inc_lit(m, "eg_lit_total", "result", "allow", NULL, NULL, 1);
		eg_metric_inc(m, name, "result", v, NULL, NULL, 2);
		eg_metric_inc_lit(m, "eg_lit_total", "result", "allow", NULL, NULL, 4);
		eg_metric_inc_lit(m, "eg_lit_total", "result", "deny", NULL, NULL, 8);
		eg_metric_observe_lit(m, "eg_lit_seconds", NULL, NULL, 0.0003);
		eg_metric_observe(m, "eg_lit_seconds", NULL, NULL, 2.0);
		char *t = render(m);
		assert_non_null(strstr(t, "eg_lit_total{result=\"allow\"} 7\n"));
		assert_non_null(strstr(t, "eg_lit_total{result=\"deny\"} 8\n"));
		assert_non_null(strstr(t, "eg_lit_seconds_bucket{le=\"0.0005\"} 1\n"));
		assert_non_null(strstr(t, "eg_lit_seconds_count 2\n"));
		free(t);
		eg_metrics_free(m);
	}
}

/* A call site's series: kept while the values and the instance are the ones it saw, looked up
 * again when a value changes (another series) or the instance is another (a new daemon). */
static void test_sites(void **state)
{
	struct eg_metric_site site = { 0 }, obs = { 0 };
	for (int round = 0; round < 2; round++) {
		struct eg_metrics *m = eg_metrics_new();
		for (int i = 0; i < 3; i++) /* one site, its value alternating */
			eg_metric_inc_site(&site, m, "eg_site_total", "result", "allow", "reason", i == 1 ? "public" : "allowed",
					   1);
		eg_metric_inc_lit(m, "eg_site_total", "result", "allow", "reason", "allowed", 10);
		eg_metric_observe_site(&obs, m, "eg_site_seconds", NULL, NULL, 0.0003);
		eg_metric_observe_site(&obs, m, "eg_site_seconds", NULL, NULL, 2.0);
		eg_metric_inc_site(&site, NULL, "eg_site_total", "result", "allow", NULL, NULL, 1); /* no metrics: nothing */
		char *t = render(m);
		assert_non_null(strstr(t, "eg_site_total{result=\"allow\",reason=\"allowed\"} 12\n"));
		assert_non_null(strstr(t, "eg_site_total{result=\"allow\",reason=\"public\"} 1\n"));
		assert_non_null(strstr(t, "eg_site_seconds_bucket{le=\"0.0005\"} 1\n"));
		assert_non_null(strstr(t, "eg_site_seconds_count 2\n"));
		free(t);
		eg_metrics_free(m); /* the next round's instance: the sites look up its own series */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_histogram_gauge),
		cmocka_unit_test(test_front_cache),
		cmocka_unit_test(test_literal_calls),
		cmocka_unit_test(test_sites),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
