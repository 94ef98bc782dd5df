/* fuzz_target.c - the request-target and Host normalisers, the first code every
 * verdict runs on attacker-chosen bytes. Checks invariants, not just crashes: a
 * normalised path starts with '/', has no dot segments, no "//", no '?'/'#', and
 * normalising it again changes nothing. Also the Cookie header scanner. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	memcpy(in, data, size);
	in[size] = '\0';
	size_t outlen = size * 3 + 8;
	char *out = malloc(outlen), *again = malloc(outlen);
	if (eg_path_normalize(in, out, outlen) == 0) {
		if (out[0] != '/' || strstr(out, "//") || strstr(out, "/./") || strstr(out, "/../") ||
		    strchr(out, '?') || strchr(out, '#'))
			abort();
		size_t n = strlen(out);
		if ((n >= 2 && strcmp(out + n - 2, "/.") == 0) || (n >= 3 && strcmp(out + n - 3, "/..") == 0))
			abort();
		if (eg_path_normalize(out, again, outlen) != 0 || strcmp(out, again) != 0)
			abort(); /* idempotent */
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
