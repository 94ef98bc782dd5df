/* fuzz_config.c - config_parse on arbitrary bytes: never crashes, and any accepted
 * config has its required parts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct eg_config *c = config_parse((const char *)data, size, "fuzz", err, sizeof(err));
	if (c) {
		if (c->n_listen == 0 || !c->cookie.name)
			abort();
		config_free(c);
	} else if (!err[0]) {
		abort(); /* a rejection always says why */
	}
	return 0;
}
