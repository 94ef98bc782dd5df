/* test_json_fast.c - the claims reader (json_fast.cc, simdjson) reads as jansson does:
 * the same refusals (the strict JOSE ones first), the same values and types, and, over a
 * few hundred thousand generated near-JSON documents, never a difference. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json_fast.h"
#include "testutil.h"

static json_t *fast(const char *s, size_t n)
{
	char *buf = malloc(n + EG_JSON_PADDING);
	assert_non_null(buf);
	memcpy(buf, s, n);
	memset(buf + n, 0x5a, EG_JSON_PADDING); /* padding bytes are not read as JSON */
	json_t *j = eg_json_object_parse(buf, n);
	free(buf);
	return j;
}

static json_t *ref(const char *s, size_t n)
{
	json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static char *dump(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
}

/* Both refuse, or both accept with the same dump (order, types, every bit of a real).
 * Returns whether they accepted. */
static bool same_reading(const char *s, size_t n)
{
	json_t *a = ref(s, n), *b = fast(s, n);
	if (!a != !b) {
		fprintf(stderr, "differ on [%.*s]: jansson %s, json_fast %s\n", (int)(n > 200 ? 200 : n), s,
			a ? "accepts" : "refuses", b ? "accepts" : "refuses");
		fail();
	}
	bool ok = a != NULL;
	if (ok) {
		char *da = dump(a), *db = dump(b);
		if (strcmp(da, db) != 0)
			fprintf(stderr, "differ on [%.*s]:\n  %s\n  %s\n", (int)n, s, da, db);
		assert_string_equal(da, db);
		assert_true(json_equal(a, b));
		free(da);
		free(db);
	}
	json_decref(a);
	json_decref(b);
	return ok;
}

#define SAME(lit) same_reading(lit, sizeof(lit) - 1)
#define FAST(lit) fast(lit, sizeof(lit) - 1)

/* What strict JOSE relies on: each of these is refused by both. */
static void refusals(void **state)
{
	static const char *const bad[] = {
		"{\"sub\":\"a\",\"sub\":\"b\"}",          /* duplicate member (RFC 7515 4, 7519 4) */
		"{\"a\":{\"x\":1,\"x\":1}}",              /* ... nested too */
		"{\"a\":\"x\\u0000y\"}",                  /* NUL in a string */
		"{\"a\\u0000\":1}",                       /* NUL in a name */
		"{\"a\":9223372036854775808}",            /* above int64 */
		"{\"a\":-9223372036854775809}",
		"{\"a\":18446744073709551616}",
		"{\"a\":100000000000000000000000}",
		"{\"a\":1e400}",                          /* real overflow */
		"{\"a\":-1e400}",
		"{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":0x10}", "{\"a\":NaN}",
		"{\"a\":Infinity}", "{\"a\":1e}", "{\"a\":-}",
		"{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\u0041\"}",
		/* lone surrogates where json_fast.cc skips jansson's UTF-8 check unless it sees an 0xED */
		"{\"\\ud800\":1}", "{\"\\udc00\":1}", "{\"x\\udbff\\u0041\":1}", "{\"a\":[\"ok\",\"\\udfff\"]}",
		"{\"a\":{\"b\":\"z\\ud83d\"}}", "{\"a\":\"\\ude00\\ud83d\"}",
		"{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xff\"}",
		"{\"a\":\"\x01\"}", "{\"a\":\"\t\"}",     /* bare control characters */
		"{\"a\":\"\\x41\"}", "{\"a\":\"\\u00g1\"}",
		"{\"a\":1,}", "{\"a\":[1,]}", "{,}", "{\"a\" 1}", "{'a':1}", "{a:1}", "{\"a\":tru}",
		"{\"a\":1}x", "{\"a\":1}{}", "{\"a\":1", "", " ", "[1]", "\"s\"", "1", "null",
		"{\"a\":1}/*c*/", "\xef\xbb\xbf{\"a\":1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(same_reading(bad[i], strlen(bad[i])));
	/* a NUL byte in the input, before or after the document */
	assert_false(SAME("{\"a\":1}\0"));
	assert_false(SAME("{\"a\":\"\0\"}"));
	assert_false(SAME("\0{\"a\":1}"));
}

/* jansson's json_loadb drops a raw NUL that follows a number (its lexer puts the NUL back,
 * and a NUL in its look-ahead buffer means "read the next byte"): it loads {"a":1<NUL>}.
 * No JSON has a raw NUL; the claims reader refuses it. */
static void raw_nul_after_number(void **state)
{
	static const char doc[] = "{\"a\":1\0}";
	json_t *j = json_loadb(doc, sizeof(doc) - 1, JSON_REJECT_DUPLICATES, NULL);
	if (j) /* the quirk as of jansson 2.14 (Debian 12); the reader refuses either way */
		printf("# jansson %s loads {\"a\":1<NUL>}\n", JANSSON_VERSION);
	json_decref(j);
	assert_null(FAST(doc));
	assert_null(FAST("{\"a\":[1\0]}"));
	assert_null(FAST("{\"a\":-0.5\0,\"b\":2}"));
}

static void values_and_types(void **state)
{
	assert_true(SAME("{\"sub\":\"bench-user\",\"email\":\"alice@example.test\",\"email_verified\":true,"
			 "\"groups\":[\"ops\",\"dev\"],\"preferred_username\":\"alice\",\"jti\":\"cold-0\","
			 "\"iss\":\"https://idp.example.test\",\"aud\":\"api://bench\",\"iat\":1796313992,"
			 "\"exp\":1796317592}"));
	assert_true(SAME("{\"i\":9223372036854775807,\"j\":-9223372036854775808,\"z\":0,\"m\":-0}"));
	assert_true(SAME("{\"r\":-0.0,\"e\":1E2,\"f\":1e-400,\"g\":4.9e-324,\"h\":1.7976931348623157e308,"
			 "\"k\":0.1,\"l\":123456789012345678901234567890.5,\"n\":2.5e-3}"));
	assert_true(SAME("{\"s\":\"\\ud83d\\ude00 \\u00e9 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\","
			 "\"esc\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}"));
	assert_true(SAME(" \t\r\n{ \"a\" : [ 1 , { \"b\" : null } , [ ] , { } ] , \"t\":true,\"f\":false } \n"));
	assert_true(SAME("{}"));
	assert_true(SAME("{\"\":1,\"a\":{\"\":2}}"));
	/* the exact types: exp as an integer, iat as a real */
	json_t *j = FAST("{\"exp\":1700000000,\"iat\":1.5}");
	assert_non_null(j);
	assert_true(json_is_integer(json_object_get(j, "exp")));
	assert_true(json_is_real(json_object_get(j, "iat")));
	json_decref(j);
}

/* jansson allows JSON_PARSER_MAX_DEPTH (2,048) levels of nesting, and so do we. */
static void depth_limit(void **state)
{
	for (int depth = JSON_PARSER_MAX_DEPTH - 2; depth <= JSON_PARSER_MAX_DEPTH + 1; depth++) {
		/* {"a": + (depth - 1) arrays + } */
		size_t n = 0;
		char *s = malloc(2 * (size_t)depth + 16);
		n += (size_t)sprintf(s, "{\"a\":");
		for (int i = 1; i < depth; i++)
			s[n++] = '[';
		for (int i = 1; i < depth; i++)
			s[n++] = ']';
		s[n++] = '}';
		bool ok = same_reading(s, n);
		assert_true(ok == (depth <= JSON_PARSER_MAX_DEPTH));
		free(s);
	}
}

/* --- generated documents ------------------------------------------------------------ */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

struct sb {
	char b[4096];
	size_t n;
};
static void put(struct sb *s, const char *t)
{
	size_t l = strlen(t);
	if (s->n + l < sizeof(s->b))
		memcpy(s->b + s->n, t, l), s->n += l;
}

static const char *const numbers[] = {
	"0", "-0", "1", "-1", "0.0", "-0.0", "1e2", "1E+2", "1e-2", "1.5", "-1.5e10", "9223372036854775807",
	"-9223372036854775808", "9223372036854775808", "-9223372036854775809", "18446744073709551615",
	"1e308", "1e309", "2e-308", "1e-400", "4.9e-324", "0.1", "3.141592653589793", "17976931348623157e292",
	"123456789012345678", "1234567890123456789012", "01", "1.", ".1", "-", "1e", "+1", "00", "1.0e+",
};
static const char *const strings[] = {
	"\"\"", "\"a\"", "\"sub\"", "\"\\u0000\"", "\"\\u0041\"", "\"\\ud83d\\ude00\"", "\"\\ud800\"",
	"\"\\udc00\"", "\"\\n\\t\\\"\\\\\\/\"", "\"\xc3\xa9\"", "\"\xed\xa0\x80\"", "\"\xc0\xaf\"", "\"\xf0\x9f\x98\x80\"",
	"\"\x7f\"", "\"\x1f\"", "\"\\u00zz\"", "\"\\q\"", "\"a\\u0000b\"", "\"\xe2\x82\"",
};
static const char *const names[] = { "\"a\"", "\"b\"", "\"sub\"", "\"\"", "\"a\\u0000\"", "\"\\u0061\"", "\"\xc3\xa9\"" };

static void gen(struct sb *s, int depth)
{
	unsigned k = rnd(depth > 3 ? 6 : 9);
	switch (k) {
	case 0: put(s, numbers[rnd(sizeof(numbers) / sizeof(numbers[0]))]); break;
	case 1: put(s, strings[rnd(sizeof(strings) / sizeof(strings[0]))]); break;
	case 2: put(s, rnd(2) ? "true" : "false"); break;
	case 3: put(s, "null"); break;
	case 4: put(s, numbers[rnd(sizeof(numbers) / sizeof(numbers[0]))]); break;
	case 5: put(s, strings[rnd(sizeof(strings) / sizeof(strings[0]))]); break;
	case 6: case 7: {
		put(s, "{");
		for (unsigned i = 0, m = rnd(5); i < m; i++) {
			if (i)
				put(s, ",");
			put(s, names[rnd(sizeof(names) / sizeof(names[0]))]);
			put(s, ":");
			gen(s, depth + 1);
		}
		put(s, "}");
		break;
	}
	default: {
		put(s, "[");
		for (unsigned i = 0, m = rnd(4); i < m; i++) {
			if (i)
				put(s, ",");
			gen(s, depth + 1);
		}
		put(s, "]");
	}
	}
}

static void generated_documents(void **state)
{
	static const char noise[] = "{}[],:\" \\0-.eE\x01\x80\xff\t\nu";
	unsigned accepted = 0, total = 200000;
	for (unsigned t = 0; t < total; t++) {
		struct sb s = { .n = 0 };
		put(&s, "{");
		for (unsigned i = 0, m = 1 + rnd(4); i < m; i++) {
			if (i)
				put(&s, ",");
			put(&s, names[rnd(sizeof(names) / sizeof(names[0]))]);
			put(&s, ":");
			gen(&s, 1);
		}
		put(&s, "}");
		/* a third of them damaged: a byte replaced, dropped or inserted */
		for (unsigned m = rnd(3) == 0 ? 1 + rnd(2) : 0; m && s.n > 1 && s.n < sizeof(s.b) - 1; m--) {
			size_t at = rnd((unsigned)s.n);
			char c = noise[rnd(sizeof(noise) - 1)];
			switch (rnd(3)) {
			case 0: s.b[at] = c; break;
			case 1: memmove(s.b + at, s.b + at + 1, s.n - at - 1), s.n--; break;
			default: memmove(s.b + at + 1, s.b + at, s.n - at), s.b[at] = c, s.n++;
			}
		}
		if (memchr(s.b, '\0', s.n)) /* see raw_nul_after_number */
			assert_null(fast(s.b, s.n));
		else
			accepted += same_reading(s.b, s.n);
	}
	/* both kinds occur in numbers, or the comparison says little */
	assert_true(accepted > total / 20 && accepted < total - total / 20);
	printf("# %u of %u generated documents accepted by both, the rest refused by both\n", accepted, total);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(refusals),
		cmocka_unit_test(raw_nul_after_number),
		cmocka_unit_test(values_and_types),
		cmocka_unit_test(depth_limit),
		cmocka_unit_test(generated_documents),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
