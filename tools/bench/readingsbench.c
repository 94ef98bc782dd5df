/* readingsbench.c - cost of eg_readings_compute (every reading of a request target,
 * the per-verdict path work) on a few typical and hostile targets, single thread, beside
 * eg_readings_compute_full (every plan, no plain-target fast path).
 *   readingsbench [ITERATIONS] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "readings.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
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
	long n = argc > 1 ? atol(argv[1]) : 200000;
	/* eg_readings_compute (the plain-target fast path where it applies) and every plan */
	int (*const fn[2])(const char *, struct eg_readings *) = { eg_readings_compute, eg_readings_compute_full };
	for (size_t k = 0; k < sizeof(targets) / sizeof(targets[0]); k++) {
		for (int f = 0; f < 2; f++) {
			size_t readings = 0;
			double t0 = now_s();
			for (long i = 0; i < n; i++) {
				struct eg_readings r;
				if (fn[f](targets[k], &r) == 0)
					readings = r.n;
				eg_readings_free(&r);
			}
			double dt = now_s() - t0;
			printf("%.2f us  %zu readings  %-10s %s\n", dt / (double)n * 1e6, readings,
			       f ? "every plan" : "compute", targets[k]);
		}
	}
	return 0;
}
