/* readingsbench.c - cost of eg_readings_compute (every reading of a request target,
 * the per-verdict path work) on a few typical and hostile targets, single thread, beside
 * eg_readings_compute_full (every plan, no plain-target fast path). The last targets are
 * ambiguous ones (no two parsers read them alike: read under every composition of the
 * transforms), the worst found: many readings, every transform's trigger present, more
 * than EG_READINGS_MAX readings (refused), 4 KB (refused past EG_READINGS_WORK); for them
 * the third figure is eg_readings_compute_exhaustive (every composition, none pruned: what
 * the daemon did before the pruning), and "resolved" the compositions that gave a reading.
 *   readingsbench [ITERATIONS]
 * Wall-clock on a shared machine moves; for before/after compare instructions:
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect=eg_readings_compute \
 *     build/bench/readingsbench 100     (Ir / (100 x targets) per call, roughly) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "readings.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run(const char *label, int (*fn)(const char *, struct eg_readings *), const char *target, long n)
{
	size_t readings = 0, resolved = 0;
	int rc = 0;
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		struct eg_readings r;
		rc = fn(target, &r);
		readings = r.n, resolved = r.resolved;
		if (rc == 0)
			eg_readings_free(&r);
	}
	double dt = now_s() - t0;
	printf("%8.2f us  %2zu readings %4zu resolved%s  %-10s %.70s%s\n", dt / (double)n * 1e6, readings, resolved,
	       rc ? " (refused)" : "", label, target, strlen(target) > 70 ? "..." : "");
}

int main(int argc, char **argv)
{
	static const char *const targets[] = {
		"/api/v1/orders/12345?x=1",
		"/public/assets/app.3f2a1c.js",
		"/api/v1/Users/AbC123/Profile.JSON",
		"/admin/..;/public/%252e%252e/ADMIN./x",
		"/caf%C3%A9/%EF%BC%A1dmin/a/long/path/with/many/segments/and/more/segments/file.html",
	};
	static const char *const ambiguous[] = {
		"/public%5cx/..;/a%ef%bd%84min%0d%0a",
		"/public%255cx/%e0%80%ae%e0%80%ae/;/admin%252fa.txt",
		"/public/::$DATA/%2f%252f..;/admin",
		"/public/%20..\\/\\%20%5c/%20%20/..;%5cADMIN",
		"//pub%5Clic%2F;a/..;/%252e%252e/ADM%C4%B1N.json::$DATA%3f#x/../y",
		NULL, /* 4 KB, below */
	};
	long n = argc > 1 ? atol(argv[1]) : 200000;
	for (size_t k = 0; k < sizeof(targets) / sizeof(targets[0]); k++) {
		run("compute", eg_readings_compute, targets[k], n);
		run("every plan", eg_readings_compute_full, targets[k], n);
	}
	static char big[EG_TARGET_MAX + 1];
	strcpy(big, "/pub%5Clic%2F;a/..;/%252e%252e/ADM%C4%B1N.json::$DATA/");
	for (size_t l = strlen(big); l + 9 <= EG_TARGET_MAX; l += 9)
		memcpy(big + l, "abcdefgh/", 10);
	long na = n / 20 > 0 ? n / 20 : 1;
	for (size_t k = 0; k < sizeof(ambiguous) / sizeof(ambiguous[0]); k++) {
		const char *t = ambiguous[k] ? ambiguous[k] : big;
		run("compute", eg_readings_compute, t, na);
		run("exhaustive", eg_readings_compute_exhaustive, t, ambiguous[k] ? na : na / 10 + 1);
	}
	return 0;
}
