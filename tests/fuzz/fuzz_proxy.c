/* fuzz_proxy.c - what edgegated reads from a proxy's headers: the last X-Forwarded-For
 * element and the path of a stated target for the routed host. Invariants: a path handed
 * on starts with '/' and lies inside the input; an absolute target passes only when its
 * host normalises to the routed host; an accepted address is the parse of the last element;
 * an accepted X-Forwarded-Prefix is a plain path (no "//", comma, escape, dot segment). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "policy.h"
#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	memcpy(in, data, size);
	in[size] = '\0';

	uint8_t a[16], b[16];
	if (eg_proxy_last_addr(in, a) == 0) {
		const char *comma = strrchr(in, ',');
		const char *last = comma ? comma + 1 : in;
		while (*last == ' ' || *last == '\t')
			last++;
		char buf[64];
		size_t n = strlen(last);
		while (n && (last[n - 1] == ' ' || last[n - 1] == '\t'))
			n--;
		if (n >= sizeof(buf))
			abort();
		memcpy(buf, last, n);
		buf[n] = '\0';
		if (eg_addr_parse(buf, b) != 0 || memcmp(a, b, 16) != 0)
			abort();
	}

	/* the first line is the routed host, the rest the stated target */
	char *nl = strchr(in, '\n');
	const char *target = nl ? nl + 1 : in;
	char host[256] = "www.example";
	if (nl) {
		*nl = '\0';
		if (eg_host_normalize(in, host, sizeof(host)) != 0)
			strcpy(host, "www.example");
	}
	const char *why = NULL;
	const char *path = eg_proxy_target_path(target, host, &why);
	if (path) {
		if (path[0] != '/')
			abort();
		if (strcmp(path, "/") != 0 && (path < target || path >= target + strlen(target)))
			abort();
		if (target[0] != '/') {
			const char *auth = strstr(target, "://");
			char raw[256], norm[256];
			size_t hl = auth ? strcspn(auth + 3, "/?#") : 0;
			if (!auth || hl == 0 || hl >= sizeof(raw))
				abort();
			memcpy(raw, auth + 3, hl);
			raw[hl] = '\0';
			if (eg_host_normalize(raw, norm, sizeof(norm)) != 0 || strcmp(norm, host) != 0)
				abort();
		}
	} else if (!why) {
		abort(); /* every refusal names its reason */
	}
	/* X-Forwarded-Prefix: an accepted prefix is a plain path inside the input */
	size_t pl = 0;
	if (eg_proxy_prefix(in, &pl)) {
		if (in[0] != '/' || pl > strlen(in) || pl > 1024 || (pl && in[pl - 1] == '/'))
			abort();
		for (size_t i = 0; i < pl; i++)
			if (in[i] == ',' || in[i] == '%' || in[i] == '\\' || (unsigned char)in[i] <= 0x20 ||
			    (in[i] == '/' && i + 1 < pl && in[i + 1] == '/'))
				abort();
		if (strstr(in, "/../") || strstr(in, "/./"))
			abort();
	}
	free(in);
	return 0;
}
