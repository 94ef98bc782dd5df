/* fuzz_lane.c - the verdict lane's request reader (userspace/http/lane_parse.c), which sees
 * every byte nginx's peer sends on the unix socket before libmicrohttpd does. Nothing may
 * read out of bounds, and whatever it accepts must be the simple shape it promises:
 * GET/HEAD of the verdict path over HTTP/1.1, tchar names, non-empty VCHAR/SP/HTAB values
 * without surrounding whitespace, one Host, no framing headers, the block ending at the
 * first empty line; a cut-short copy of an accepted request is never accepted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lane_parse.h"

static void check_msg(const char *in, size_t len, long used, const struct eg_lane_msg *m)
{
	if (used <= 0 || (size_t)used > len || used < 4 || memcmp(in + used - 4, "\r\n\r\n", 4) != 0)
		abort();
	/* the first empty line ends the block */
	const char *first = memmem(in, len, "\r\n\r\n", 4);
	if (!first || first + 4 != in + used)
		abort();
	if (strcmp(m->method, "GET") != 0 && strcmp(m->method, "HEAD") != 0)
		abort();
	if (strcmp(m->target, "/auth") != 0 || m->n > EG_LANE_MAX_HEADERS)
		abort();
	unsigned hosts = 0;
	for (size_t i = 0; i < m->n; i++) {
		const char *n = m->name[i], *v = m->value[i];
		size_t nl = strlen(n), vl = strlen(v);
		if (nl != m->name_len[i]) /* the length the header index reads */
			abort();
		if (!nl || nl != strspn(n, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))
			abort();
		if (!vl || v[0] == ' ' || v[0] == '\t' || v[vl - 1] == ' ' || v[vl - 1] == '\t')
			abort();
		for (size_t k = 0; k < vl; k++) {
			unsigned char c = (unsigned char)v[k];
			if (!((c >= 0x21 && c <= 0x7e) || c == ' ' || c == '\t'))
				abort();
		}
		if (strcasecmp(n, "Transfer-Encoding") == 0 || strcasecmp(n, "Connection") == 0 ||
		    strcasecmp(n, "Upgrade") == 0 || strcasecmp(n, "Expect") == 0 ||
		    (strcasecmp(n, "Content-Length") == 0 && strcmp(v, "0") != 0))
			abort();
		hosts += strcasecmp(n, "Host") == 0;
	}
	if (hosts != 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1); /* exactly the input: ASan sees any overread */
	memcpy(buf, data, size);
	struct eg_lane_msg m;
	long used = eg_lane_parse(buf, size, "/auth", &m);
	if (used > 0) {
		check_msg((const char *)data, size, used, &m);
		/* every cut-short copy is incomplete or refused, never accepted */
		for (size_t cut = 0; cut < (size_t)used; cut += 1 + cut / 8) {
			char *part = malloc(cut ? cut : 1);
			memcpy(part, data, cut);
			if (eg_lane_parse(part, cut, "/auth", &m) > 0)
				abort();
			free(part);
		}
	} else if (used != EG_LANE_INCOMPLETE && used != EG_LANE_NOT_OURS) {
		abort();
	} else if (used == EG_LANE_INCOMPLETE && (size >= EG_LANE_MAX_BLOCK || memmem(data, size, "\r\n\r\n", 4))) {
		abort(); /* incomplete only while the block may still end within the bound */
	}
	free(buf);
	return 0;
}
