/* fuzz_json.c - differential: the claims reader (json_fast.cc, simdjson) against jansson.
 * The same bytes go to json_loadb(JSON_REJECT_DUPLICATES) and eg_json_object_parse. Both
 * must refuse, or both must give an object with the same members in the same order, of
 * the same types and values (reals to the last bit, -0.0 included). Any difference aborts:
 * "what no two parsers read alike" must not exist between the reader tokens go through and
 * the one the rest of the code was written against. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json_fast.h"

static char *dump(const json_t *j)
{
	/* JSON_REAL_PRECISION(17): every double prints exactly; no sort, so order counts */
	return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + EG_JSON_PADDING);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	memset(buf + size, 0, EG_JSON_PADDING);

	json_t *ref = json_loadb(buf, size, JSON_REJECT_DUPLICATES, NULL);
	if (ref && !json_is_object(ref)) {
		json_decref(ref);
		ref = NULL;
	}
	json_t *got = eg_json_object_parse(buf, size);
	/* A raw NUL byte is never JSON. jansson's json_loadb drops one that follows a number
	 * ({"a":1<NUL>} loads: its lexer's unget of the NUL reads as "buffer empty"); the
	 * reader must refuse every such input, whatever jansson says. */
	if (memchr(data, '\0', size)) {
		if (got)
			abort();
		json_decref(ref);
		ref = NULL;
	}
	if (!ref != !got) {
		fprintf(stderr, "fuzz_json: jansson %s, json_fast %s\n", ref ? "accepts" : "refuses",
			got ? "accepts" : "refuses");
		abort();
	}
	if (ref) {
		char *a = dump(ref), *b = dump(got);
		if (!a || !b || strcmp(a, b) != 0 || !json_equal(ref, got)) {
			fprintf(stderr, "fuzz_json: jansson %s\n          json_fast %s\n", a ? a : "?", b ? b : "?");
			abort();
		}
		free(a);
		free(b);
	}
	json_decref(ref);
	json_decref(got);
	free(buf);
	return 0;
}
