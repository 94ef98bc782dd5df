/* fuzz_target.c - the request-target readings, the strict normaliser and the Host
 * normaliser: the first code every verdict runs on attacker-chosen bytes. Checks
 * invariants, not just crashes: readings are bounded in number and length, distinct,
 * start with '/', hold no NUL and no dot segment; reading 0 is the strict reading; a
 * normalised path has no "//" and normalising it again changes nothing; the plain-target
 * fast path gives what every plan gives; the pruned compositions of an ambiguous target
 * give the set every composition gives (eg_readings_compute_exhaustive). Also the
 * Cookie header scanner. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "policy.h"
#include "readings.h"

static bool has_dot_segment(const char *p)
{
	size_t n = strlen(p);
	return strstr(p, "/./") || strstr(p, "/../") || (n >= 2 && strcmp(p + n - 2, "/.") == 0) ||
	       (n >= 3 && strcmp(p + n - 3, "/..") == 0);
}

/* r (computed, ambiguous) has the readings of every composition, none skipped: the
 * same set, the same v[0]. Short targets only (every composition is slow). */
static void check_pruning(const char *in, const struct eg_readings *r)
{
	struct eg_readings all;
	if (eg_readings_compute_exhaustive(in, &all) != 0 || all.n != r->n || strcmp(all.v[0].path, r->v[0].path) != 0 ||
	    all.v[0].folded != r->v[0].folded)
		abort();
	for (size_t i = 0; i < r->n; i++) {
		bool found = false;
		for (size_t k = 0; k < all.n && !found; k++)
			found = all.v[k].folded == r->v[i].folded && strcmp(all.v[k].path, r->v[i].path) == 0;
		if (!found)
			abort();
	}
	eg_readings_free(&all);
}

static void check_readings(const char *in, size_t size)
{
	struct eg_readings r;
	if (eg_readings_compute(in, &r) != 0) {
		if (r.n != 0)
			abort();
		struct eg_readings all; /* refused: too many readings for every composition too, or past the work bound */
		if (size <= 256 && eg_readings_compute_exhaustive(in, &all) == 0) {
			if (!all.ambiguous) /* only an ambiguous target meets the work bound */
				abort();
			eg_readings_free(&all);
		}
		return;
	}
	if (r.ambiguous && size <= 256)
		check_pruning(in, &r);
	if (r.n < 1 || r.n > EG_READINGS_MAX || r.v[0].folded)
		abort();
	for (size_t i = 0; i < r.n; i++) {
		const char *p = r.v[i].path;
		if (p[0] != '/' || has_dot_segment(p) || strlen(p) > 4 * EG_TARGET_MAX + 2)
			abort();
		for (size_t k = 0; k < i; k++)
			if (r.v[k].folded == r.v[i].folded && strcmp(r.v[k].path, p) == 0)
				abort(); /* deduplicated */
	}
	/* the plain-target fast path reads exactly as every plan does */
	struct eg_readings full;
	if (eg_readings_compute_full(in, &full) != 0 || full.n != r.n)
		abort();
	for (size_t i = 0; i < r.n; i++)
		if (strcmp(full.v[i].path, r.v[i].path) != 0 || full.v[i].folded != r.v[i].folded)
			abort();
	if ((full.ambiguous == NULL) != (r.ambiguous == NULL) || (r.ambiguous && strcmp(full.ambiguous, r.ambiguous)))
		abort();
	eg_readings_free(&full);
	char *strict = malloc(size + 8);
	if (eg_path_strict(in, strict, size + 8) != 0 || strcmp(strict, r.v[0].path) != 0)
		abort();
	free(strict);
	eg_readings_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	memcpy(in, data, size);
	in[size] = '\0';
	check_readings(in, strlen(in));
	size_t outlen = size * 3 + 8;
	char *out = malloc(outlen), *again = malloc(outlen);
	if (eg_path_normalize(in, out, outlen) == 0) {
		if (out[0] != '/' || strstr(out, "//") || has_dot_segment(out))
			abort();
		/* idempotent when the decoded result is itself an unambiguous target */
		if (!strpbrk(out, "%?#\\ ;") && (eg_path_normalize(out, again, outlen) != 0 || strcmp(out, again) != 0))
			abort();
	}
	char host[256];
	if (eg_host_normalize(in, host, sizeof(host)) == 0) {
		for (const char *p = host; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				abort();
	}
	char cookie[64];
	const char *v = eg_cookie_value(in, "_edgegate", cookie, sizeof(cookie));
	if (v && (v != cookie || strlen(cookie) >= sizeof(cookie) || !strstr(in, "_edgegate=")))
		abort();
	free(in);
	free(out);
	free(again);
	return 0;
}
