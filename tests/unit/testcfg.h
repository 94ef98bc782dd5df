/* testcfg.h - a config parsed from JSON for the unit tests that need one (fails the test,
 * with the parser's message, when it does not parse). */
#ifndef EG_TESTCFG_H
#define EG_TESTCFG_H

#include <string.h>
#include "testutil.h"
#include "config.h"

static inline struct eg_config *load(const char *json)
{
	char err[256];
	struct eg_config *c = config_parse(json, strlen(json), "test", err, sizeof(err));
	if (!c)
		print_error("config: %s\n", err);
	assert_non_null(c);
	return c;
}

#endif
