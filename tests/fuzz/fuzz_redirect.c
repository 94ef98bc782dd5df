/* fuzz_redirect.c - the open-redirect validator. Besides memory safety it checks the
 * validator's contract on every accepted input: no backslash, no whitespace or
 * control byte, relative targets never start with "//", absolute ones are http(s)
 * with an allowlisted host and no userinfo. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redirect.h"

static const char *const allow[] = { "app.example.test", ".corp.test" };

static int host_ok(const char *t)
{
	char h[256];
	size_t hl;

	if (eg_url_host(t, h, sizeof(h)))
		return 0;
	hl = strlen(h);
	if (strcmp(h, "app.example.test") == 0 || strcmp(h, "corp.test") == 0)
		return 1;
	return hl > 10 && strcmp(h + hl - 10, ".corp.test") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *t = malloc(size + 1);

	if (!t)
		return 0;
	memcpy(t, data, size);
	t[size] = 0;
	if (eg_redirect_allowed(t, allow, 2)) {
		for (const unsigned char *p = (const unsigned char *)t; *p; p++)
			if (*p <= 0x20 || *p == 0x7f || *p == '\\' || *p >= 0x80)
				abort();
		if (t[0] == '/') {
			if (t[1] == '/')
				abort();
		} else {
			if (strncasecmp(t, "https://", 8) && strncasecmp(t, "http://", 7))
				abort();
			if (!host_ok(t))
				abort();
			const char *a = strstr(t, "//") + 2;
			size_t alen = strcspn(a, "/?#");
			if (memchr(a, '@', alen))
				abort();
		}
	}
	free(t);
	return 0;
}
