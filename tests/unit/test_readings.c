/* test_readings.c - the readings of a request target an upstream may take, one test
 * per class of parser disagreement, the classes no two parsers read alike, benign
 * targets, and the bounds. */
#include <dirent.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "testutil.h"

#include "readings.h"
#include "ufold.h"

static void dump(const char *target, const struct eg_readings *r)
{
	print_error("readings of %s (ambiguous: %s):\n", target, r->ambiguous ? r->ambiguous : "no");
	for (size_t i = 0; i < r->n; i++)
		print_error("  %s%s\n", r->v[i].path, r->v[i].folded ? " (folded)" : "");
}

static bool has(const struct eg_readings *r, const char *path)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i].path, path) == 0)
			return true;
	return false;
}

/* target has every reading in want (NULL-terminated) and the given ambiguity. */
static void expect(const char *target, const char *ambiguous, const char *strict, const char *const *want)
{
	struct eg_readings r;
	assert_int_equal(eg_readings_compute(target, &r), 0);
	bool okay = strcmp(r.v[0].path, strict) == 0 && !r.v[0].folded;
	for (const char *const *w = want; *w; w++)
		okay &= has(&r, *w);
	okay &= ambiguous ? r.ambiguous && strcmp(r.ambiguous, ambiguous) == 0 : r.ambiguous == NULL;
	okay &= r.n >= 1 && r.n <= EG_READINGS_MAX;
	for (size_t i = 0; i < r.n; i++)
		okay &= r.v[i].path[0] == '/';
	if (!okay)
		dump(target, &r);
	eg_readings_free(&r);
	assert_true(okay);
}

#define W(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_dot_segments(void **state)
{
	expect("/public/../admin/", NULL, "/admin/", W("/admin/"));
	expect("/public/%2e%2e/admin/", NULL, "/admin/", W("/admin/"));
	expect("/public/./%2E/x", NULL, "/public/x", W("/public/x"));
	expect("/a/b/../../../../admin", NULL, "/admin", W("/admin"));
}

static void test_double_encoding(void **state)
{
	expect("/public/%252e%252e/admin/", NULL, "/public/%2e%2e/admin/", W("/admin/"));
	expect("/%2561dmin/", NULL, "/%61dmin/", W("/admin/"));
	/* an encoded separator after one decoding: no two parsers read it alike (docs/config.md) */
	expect("/public/..%252fadmin/", "encoded_separator", "/public/..%2fadmin/", W("/admin/"));
	expect("/api%252fx", "encoded_separator", "/api%2fx", W("/api/x"));
	/* decoded, then parsed again: the decoded '?' ends the path */
	expect("/admin%3F/../public/x", NULL, "/public/x", W("/admin"));
	expect("/admin%253F/../public/x", NULL, "/public/x", W("/admin"));
	expect("/admin%2523/../public/x", NULL, "/public/x", W("/admin"));
}

/* Found by tests/integration/boundary_property.t.mjs: mixes the fixed plans missed. */
static void test_property_regressions(void **state)
{
	/* undecoded: routers that match the raw path keep "%2e%2e" as a name */
	expect("/board/%2E%2E/v1", NULL, "/v1", W("/board/%2E%2E/v1"));
	/* ambiguous targets are read every way: %5C as one segment's text, ;params, folding */
	expect("/public%5cx/..;/a%ef%bd%84min%0d%0a", "encoded_separator", "/public%5Cx/..;/a\xef\xbd\x84min%0D%0A",
	       W("/admin%0d%0a"));
	/* a raw '\\' as '/' while %5C stays text (WHATWG URL), then an authority */
	expect("/\\public/a%5Cb/.%2e/api", "raw_backslash", "/\\public/api", W("/api"));
	/* %255C a plain '\\' (POSIX) while %252F is a '/' */
	expect("/public%255cx/%e0%80%ae%e0%80%ae/;/admin%252fa.txt", "bad_utf8",
	       "/public%5cx/\xe0\x80\xae\xe0\x80\xae/;/admin%2fa.txt", W("/admin/a.txt"));
	/* compatibility characters that fold into syntax: read every way (no NFKC, yet Windows trim
	 * or ;params and an authority) */
	expect("/public\xef\xbc\x8fx/%2E%2E/admin.", "compat_syntax", "/admin.", W("/admin"));
	expect("//public\xef\xbc\x8fX/;x=1/api", "compat_syntax", "/public\xef\xbc\x8fX/;x=1/api", W("/api"));
	expect("/a/\xe2\x80\xa5/admin", "compat_syntax", "/a/\xe2\x80\xa5/admin", W("/admin"));
	/* decoded twice, %2F kept as text both times: "%252e%252e" climbs out of "public%2Fa\\b" */
	expect("/public%2fa\\b/%252e%252e/admin", "encoded_separator", "/public%2Fa\\b/%2e%2e/admin", W("/admin"));
}

static void test_params(void **state)
{
	/* nginx/Express/Go: "..;" is a name; Tomcat strips ;params before dot segments. */
	expect("/admin/..;/public/x", NULL, "/admin/..;/public/x", W("/public/x"));
	expect("/public/..;/admin/", NULL, "/public/..;/admin/", W("/admin/"));
	expect("/admin;jsessionid=1/x", NULL, "/admin;jsessionid=1/x", W("/admin/x"));
	expect("/public;/../admin", NULL, "/admin", W("/admin"));
}

static void test_slashes(void **state)
{
	expect("//public/x", NULL, "/public/x", W("//public/x", "/x"));         /* unmerged; authority */
	expect("//host/admin/", NULL, "/host/admin/", W("//host/admin/", "/admin/"));
	expect("/public//../admin", NULL, "/admin", W("/public/admin"));        /* RFC pops the empty segment */
	expect("/admin/x//../../public", NULL, "/public", W("/admin/public"));
}

static void test_separators(void **state)
{
	expect("/public/..\\admin/", "raw_backslash", "/public/..\\admin/", W("/admin/"));
	expect("/public/..%2fadmin/", "encoded_separator", "/public/..%2Fadmin/", W("/admin/"));
	expect("/public/..%5Cadmin/", "encoded_separator", "/public/..%5Cadmin/", W("/admin/"));
	expect("/public/a%3b/../../admin", "encoded_separator", "/admin", W("/admin"));
}

static void test_case_and_compat(void **state)
{
	expect("/ADMIN/", NULL, "/ADMIN/", W("/admin/"));
	expect("/%41dmin/", NULL, "/Admin/", W("/admin/"));
	expect("/adm%C4%B1n/", NULL, "/adm\xc4\xb1n/", W("/admin/"));          /* dotless i */
	expect("/%E2%84%AAey/", NULL, "/\xe2\x84\xaa" "ey/", W("/key/"));      /* Kelvin sign */
	expect("/%C5%BFecret/", NULL, "/\xc5\xbf" "ecret/", W("/secret/"));    /* long s */
	expect("/%EF%BC%A1DMIN/", NULL, "/\xef\xbc\xa1" "DMIN/", W("/admin/")); /* fullwidth A */
	/* a fullwidth '/' folds into syntax: no two parsers read it alike */
	expect("/%EF%BC%8F%EF%BD%81dmin/", "compat_syntax", "/\xef\xbc\x8f\xef\xbd\x81" "dmin/", W("/admin/"));
	expect("/public/%EF%BC%8E%EF%BC%8E/admin/", "compat_syntax", "/public/\xef\xbc\x8e\xef\xbc\x8e/admin/", W("/admin/"));
	expect("/%EF%AC%81les/", NULL, "/\xef\xac\x81les/", W("/files/"));     /* fi ligature */
	expect("/ad%C2%ADmin/", NULL, "/ad\xc2\xadmin/", W("/admin/"));        /* soft hyphen ignored */
}

static void test_windows(void **state)
{
	expect("/admin./x", NULL, "/admin./x", W("/admin/x"));
	expect("/admin%20/x", NULL, "/admin /x", W("/admin/x"));
	expect("/admin::$DATA/x", NULL, "/admin::$DATA/x", W("/admin/x"));
	expect("/admin%3A%3A%24DATA", NULL, "/admin::$DATA", W("/admin"));
	expect("/public/..%20/admin/", NULL, "/public/.. /admin/", W("/admin/"));
	expect("/public/.../admin/", NULL, "/public/.../admin/", W("/admin/"));
}

static void test_suffix(void **state)
{
	/* Spring's suffix pattern match serves /admin.json from the /admin handler. */
	expect("/admin.json", NULL, "/admin.json", W("/admin"));
	expect("/api/admin.x.y", NULL, "/api/admin.x.y", W("/api/admin"));
	expect("/public/.hidden", NULL, "/public/.hidden", W("/public/.hidden"));
	expect("/a/..x", NULL, "/a/..x", W("/a/..x")); /* never a new dot segment */
	struct eg_readings r;
	assert_int_equal(eg_readings_compute("/a/..#", &r), 0); /* found by fuzz_target */
	for (size_t i = 0; i < r.n; i++) {
		const char *p = r.v[i].path;
		size_t n = strlen(p);
		assert_false(n >= 2 && strcmp(p + n - 2, "/.") == 0);
		assert_false(n >= 3 && strcmp(p + n - 3, "/..") == 0);
		assert_null(strstr(p, "/./"));
		assert_null(strstr(p, "/../"));
	}
	eg_readings_free(&r);
}

static void test_ambiguous(void **state)
{
	expect("/public/x#/../../admin/", "raw_fragment", "/admin/", W("/public/x"));
	expect("/public/a%zz", "bad_escape", "/public/a%zz", W("/public/a%zz"));
	expect("/public/a%", "bad_escape", "/public/a%", W("/public/a%"));
	expect("/public/a%00/../../admin", "encoded_control", "/admin", W("/admin"));
	expect("/public/a%0d%0a", "encoded_control", "/public/a%0D%0A", W("/public/a%0D%0A"));
	expect("/public/a\tb", "control_char", "/public/a\tb", W("/public/a\tb"));
	expect("/public/a b", "control_char", "/public/a b", W("/public/a b"));
	expect("/public/%c0%ae%c0%ae/admin/", "bad_utf8", "/public/\xc0\xae\xc0\xae/admin/", W("/admin/"));
	expect("/public/%e0%80%ae%e0%80%ae/admin/", "bad_utf8", "/public/\xe0\x80\xae\xe0\x80\xae/admin/", W("/admin/"));
	expect("/public/%ff", "bad_utf8", "/public/\xff", W("/public/\xff"));
	expect("/public/%ed%a0%80", "bad_utf8", "/public/\xed\xa0\x80", W("/public/\xed\xa0\x80"));  /* surrogate */
	expect("/public/%25c0%25ae%25c0%25ae/admin/", "bad_utf8", "/public/%c0%ae%c0%ae/admin/", W("/admin/"));
	expect("/public/%2500", "encoded_control", "/public/%00", W("/public/%00"));
}

static void test_benign(void **state)
{
	expect("/public/a%25b.txt", NULL, "/public/a%b.txt", W("/public/a%b.txt"));
	expect("/public/100%25.txt", NULL, "/public/100%.txt", W("/public/100%.txt"));
	expect("/caf%C3%A9/menu", NULL, "/caf\xc3\xa9/menu", W("/caf\xc3\xa9/menu"));
	expect("/caf\xc3\xa9/menu", NULL, "/caf\xc3\xa9/menu", W("/caf\xc3\xa9/menu"));
	expect("/public/x?a=%zz#/../admin", NULL, "/public/x", W("/public/x")); /* the query is not the path */
	expect("/api/v1/orders", NULL, "/api/v1/orders", W("/api/v1/orders"));
	struct eg_readings r;
	assert_int_equal(eg_readings_compute("/api/v1/orders?x=1", &r), 0);
	for (size_t i = 0; i < r.n; i++)
		assert_string_equal(r.v[i].path, "/api/v1/orders"); /* one path, at most a folded twin */
	assert_true(r.n <= 2);
	eg_readings_free(&r);
}

static void test_bounds(void **state)
{
	struct eg_readings r;
	assert_int_equal(eg_readings_compute(NULL, &r), -1);
	assert_int_equal(eg_readings_compute("", &r), -1);
	assert_int_equal(eg_readings_compute("admin", &r), -1);
	assert_int_equal(eg_readings_compute("*", &r), -1);
	char *big = malloc(EG_TARGET_MAX + 16);
	memset(big, 'a', EG_TARGET_MAX + 15);
	big[0] = '/';
	big[EG_TARGET_MAX + 1] = '\0';
	assert_int_equal(eg_readings_compute(big, &r), -1);
	big[EG_TARGET_MAX] = '\0';
	assert_int_equal(eg_readings_compute(big, &r), 0);
	eg_readings_free(&r);
	/* expansion: U+FDFA folds to 18 characters; 1000 of them stay bounded */
	char *wide = malloc(1 + 1000 * 9 + 1), *p = wide;
	*p++ = '/';
	for (int i = 0; i < 1000; i++)
		p += sprintf(p, "%%EF%%B7%%BA");
	*p = '\0';
	assert_int_equal(eg_readings_compute(wide, &r), -1); /* longer than EG_TARGET_MAX raw */
	wide[1 + 400 * 9] = '\0';
	assert_int_equal(eg_readings_compute(wide, &r), 0);
	assert_true(r.n <= EG_READINGS_MAX);
	eg_readings_free(&r);
	free(wide);
	free(big);
	char small[8];
	assert_int_equal(eg_path_strict("/a/b/c/d/e", small, sizeof(small)), -1);
	assert_int_equal(eg_path_strict("/a/../b", small, sizeof(small)), 0);
	assert_string_equal(small, "/b");
}

static void test_utf8(void **state)
{
	assert_true(eg_utf8_valid("abc", 3));
	assert_true(eg_utf8_valid("\xc3\xa9", 2));
	assert_true(eg_utf8_valid("\xf0\x9f\x98\x80", 4));
	assert_false(eg_utf8_valid("\xc0\xae", 2));
	assert_false(eg_utf8_valid("\xe0\x80\xae", 3));
	assert_false(eg_utf8_valid("\xed\xa0\x80", 3));
	assert_false(eg_utf8_valid("\xf4\x90\x80\x80", 4));
	assert_false(eg_utf8_valid("\xc3", 1));
	size_t n;
	char *f = eg_unicode_fold("/ADM\xc4\xb1N", 8, 64, &n);
	assert_non_null(f);
	assert_string_equal(f, "/admin");
	free(f);
	assert_null(eg_unicode_fold("\xef\xb7\xba", 3, 8, &n)); /* over maxlen once expanded */
}

/* --- the plain-target fast path equals every plan ------------------------------------------- */

static size_t n_compared, n_fast;

/* eg_readings_compute (fast path where it applies) against eg_readings_compute_full:
 * the same result, the same readings in the same order, the same ambiguity. */
static void same_as_full(const char *target)
{
	struct eg_readings a, b;
	int ra = eg_readings_compute(target, &a), rb = eg_readings_compute_full(target, &b);
	bool okay = ra == rb && a.n == b.n && !b.one_block;
	okay &= (a.ambiguous == NULL) == (b.ambiguous == NULL) &&
		(!a.ambiguous || strcmp(a.ambiguous, b.ambiguous) == 0);
	for (size_t i = 0; okay && i < a.n; i++)
		okay = strcmp(a.v[i].path, b.v[i].path) == 0 && a.v[i].folded == b.v[i].folded;
	/* eg_path_strict (its own fast path) is reading 0, and needs room for it and the NUL */
	if (okay && rb == 0) {
		size_t l = strlen(b.v[0].path);
		char *strict = malloc(l + 1);
		okay = eg_path_strict(target, strict, l + 1) == 0 && strcmp(strict, b.v[0].path) == 0 &&
		       eg_path_strict(target, strict, l) == -1;
		free(strict);
	}
	if (!okay) {
		print_error("fast path differs for \"%s\" (rc %d vs %d)\n", target, ra, rb);
		dump(target, &a);
		dump(target, &b);
	}
	n_compared++;
	n_fast += a.one_block;
	eg_readings_free(&a);
	eg_readings_free(&b);
	assert_true(okay);
}

/* Each target, and its lower-case form (which often makes a hostile target plain). */
static void same_as_full_and_lower(const char *target)
{
	same_as_full(target);
	char *l = strdup(target);
	for (char *p = l; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	same_as_full(l);
	free(l);
}

static char *data_path(const char *rel)
{
	const char *root = getenv("EG_ROOT");
	size_t n = strlen(root ? root : ".") + strlen(rel) + 2;
	char *p = malloc(n);
	snprintf(p, n, "%s/%s", root ? root : ".", rel);
	return p;
}

static void test_fast_path_corpus(void **state)
{
	/* the hostile targets the integration test sends through nginx */
	char *f = data_path("tests/integration/data/hostile_targets.json");
	json_error_t err;
	json_t *all = json_load_file(f, 0, &err);
	if (!all)
		print_error("%s: %s\n", f, err.text);
	assert_non_null(all);
	assert_true(json_array_size(all) > 50);
	size_t i;
	json_t *e;
	json_array_foreach (all, i, e)
		same_as_full_and_lower(json_string_value(json_object_get(e, "target")));
	json_decref(all);
	free(f);

	/* the fuzzer's seeds */
	char *dir = data_path("tests/fuzz/seeds/fuzz_target");
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t seeds = 0;
	for (struct dirent *de; (de = readdir(d));) {
		if (de->d_name[0] == '.')
			continue;
		char *sp = malloc(strlen(dir) + strlen(de->d_name) + 2);
		sprintf(sp, "%s/%s", dir, de->d_name);
		FILE *fp = fopen(sp, "rb");
		assert_non_null(fp);
		char buf[8192];
		size_t len = fread(buf, 1, sizeof(buf) - 1, fp);
		fclose(fp);
		buf[len] = '\0'; /* up to the first NUL, as the daemon sees a header value */
		same_as_full_and_lower(buf);
		seeds++;
		free(sp);
	}
	closedir(d);
	free(dir);
	assert_true(seeds > 5);

	/* plain targets and the edges of "plain" */
	static const char *const edge[] = {
		"/", "/api/orders", "/api/orders/", "/api/orders?page=2", "/static/app.min.js", "/x.json",
		"/.well-known/openid-configuration", "/a/.b", "/a/..b", "/..x", "/.x.y", "/a.b/c", "/a/b.",
		"/a./b", "/a/.", "/a/..", "/./a", "/a//b", "//a/b", "/a/b//", "/a;b", "/a%2fb", "/A/b",
		"/a\\b", "/a#b", "/a:b", "/a$b", "/a::$data", "/a b", "/\xc3\xa9", "/a/b~c+d,e=f@g!h&i'j(k)l*",
		"/admin.", "/admin..", "/admin.json", "/admin.json/", "/public/...", "/...", "/a.", "/.",
		"", "x", "?", "/?", "/a?b/../c", "/a.b.c", "/a..b", "/-/_/~",
	};
	for (size_t k = 0; k < sizeof(edge) / sizeof(edge[0]); k++)
		same_as_full(edge[k]);

	/* random targets over the bytes the plans act on (a fixed seed: reproducible) */
	static const char alpha[] = "/////aab..AZ;%2eF5c\\#:$ ~-?xK\xc3\xa9";
	uint64_t x = 0x2545f4914f6cdd1dull;
	char t[48];
	for (int k = 0; k < 200000; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t len = 1 + (size_t)(x % 24);
		t[0] = '/';
		for (size_t j = 1; j < len; j++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			t[j] = alpha[x % (sizeof(alpha) - 1)];
		}
		t[len] = '\0';
		same_as_full(t);
	}
	print_message("compared %zu targets, %zu of them on the fast path\n", n_compared, n_fast);
	assert_true(n_fast > 1000 && n_fast < n_compared / 2);

}

/* The fast path is taken for the usual targets (and not for one a plan changes). */
static void test_fast_path_taken(void **state)
{
	struct eg_readings r;
	assert_int_equal(eg_readings_compute("/api/orders/42?x=%2e%2e", &r), 0);
	assert_true(r.one_block);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.v[0].path, "/api/orders/42");
	assert_false(r.v[0].folded);
	assert_true(r.v[1].folded);
	eg_readings_free(&r);
	assert_int_equal(eg_readings_compute("/static/app.min.js", &r), 0);
	assert_true(r.one_block);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.v[2].path, "/static/app");
	assert_true(r.v[2].folded);
	eg_readings_free(&r);
	assert_int_equal(eg_readings_compute("/Api/Orders.JSON", &r), 0);
	assert_true(r.one_block);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.v[0].path, "/Api/Orders.JSON");
	assert_string_equal(r.v[1].path, "/api/orders.json");
	assert_true(r.v[1].folded);
	assert_string_equal(r.v[2].path, "/api/orders");
	eg_readings_free(&r);
	assert_int_equal(eg_readings_compute("/api/%41dmin", &r), 0);
	assert_false(r.one_block);
	eg_readings_free(&r);
	assert_int_equal(eg_readings_compute("/api/../admin", &r), 0);
	assert_false(r.one_block);
	assert_string_equal(r.v[0].path, "/admin");
	eg_readings_free(&r);
}

/* --- the pruning of an ambiguous target's compositions ----------------------------------------- */

static size_t n_work_refused;

/* eg_readings_compute_full prunes, deduplicates and bounds what eg_readings_compute_exhaustive
 * tries every way: the same readings (a set: past v[0] their order may differ), the same
 * strict reading, the same refusal past EG_READINGS_MAX; refused besides only past
 * EG_READINGS_WORK, with fewer compositions evaluated. */
static void same_set_as_exhaustive(const char *target)
{
	struct eg_readings a, b;
	int ra = eg_readings_compute_full(target, &a), rb = eg_readings_compute_exhaustive(target, &b);
	bool okay = ra == 0 ? rb == 0 && a.n == b.n : rb == -1 || b.ambiguous;
	if (ra != 0 && rb == 0)
		n_work_refused++;
	if (okay && ra == 0) {
		okay = strcmp(a.v[0].path, b.v[0].path) == 0 && a.v[0].folded == b.v[0].folded &&
		       a.resolved <= b.resolved;
		for (size_t i = 0; okay && i < a.n; i++) {
			bool found = false;
			for (size_t k = 0; k < b.n && !found; k++)
				found = a.v[i].folded == b.v[k].folded && strcmp(a.v[i].path, b.v[k].path) == 0;
			for (size_t k = 0; k < i && okay; k++) /* each reading once */
				okay = a.v[i].folded != a.v[k].folded || strcmp(a.v[i].path, a.v[k].path) != 0;
			okay &= found;
		}
	}
	if (!okay) {
		print_error("pruned readings differ for \"%s\" (rc %d vs %d)\n", target, ra, rb);
		if (ra == 0)
			dump(target, &a);
		if (rb == 0)
			dump(target, &b);
	}
	if (ra == 0)
		eg_readings_free(&a);
	if (rb == 0)
		eg_readings_free(&b);
	assert_true(okay);
}

static void test_pruning_corpus(void **state)
{
	char *f = data_path("tests/integration/data/hostile_targets.json");
	json_error_t err;
	json_t *all = json_load_file(f, 0, &err);
	assert_non_null(all);
	size_t i;
	json_t *e;
	json_array_foreach (all, i, e)
		same_set_as_exhaustive(json_string_value(json_object_get(e, "target")));
	json_decref(all);
	free(f);
	/* random ambiguous targets over the pieces each transform acts on (a fixed seed) */
	static const char *const pieces[] = {
		"/", "/", "..", ".", "%2e", "%2f", "%5c", "\\", ";", ";x=1", "%3b", "#", "%3f", "%253f", " ", "%20",
		"::$DATA", ":", "%252f", "%255c", "%c0%ae", "%EF%BC%8F", "\xef\xbc\x8f", "%EF%BD%81", "%C4%B1", "A",
		"admin", "x.json", "%00", "%2500", "%", "%zz", "//", "%EF%B7%BA",
	};
	uint64_t x = 0x9e3779b97f4a7c15ull;
	char t[256];
	for (int k = 0; k < 6000; k++) {
		size_t len = 1;
		t[0] = '/';
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		for (size_t j = 0, m = 1 + x % 9; j < m; j++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			const char *pc = pieces[x % (sizeof(pieces) / sizeof(pieces[0]))];
			size_t pl = strlen(pc);
			memcpy(t + len, pc, pl);
			len += pl;
		}
		t[len] = '\0';
		same_set_as_exhaustive(t);
	}
	print_message("%zu targets refused past EG_READINGS_WORK only\n", n_work_refused);
	assert_true(n_work_refused < 60); /* 1 % of the random ones at most */
}

/* the distinct readings equal to path in either case (folded ones are lower-case; a
 * reading and its folded twin count once) */
static size_t count_path(const struct eg_readings *r, const char *path)
{
	size_t k = 0;
	for (size_t i = 0; i < r->n; i++) {
		bool again = false;
		for (size_t j = 0; j < i && !again; j++)
			again = strcasecmp(r->v[j].path, r->v[i].path) == 0;
		k += !again && strcasecmp(r->v[i].path, path) == 0;
	}
	return k;
}

/* An ambiguous target whose readings are all under /public/ but one: the one that reaches
 * /admin (folding, then Windows trimming: "%c0%ae.. " is "..." is "..") is kept however
 * many compositions read the target the same way, each reading once, from far fewer
 * compositions than every one. verdict.c judges it under /admin/: ambiguous_path. */
static void test_lone_reading(void **state)
{
	static const struct {
		const char *target;
		size_t n;
	} cases[] = {
		{ "/public/%c0%ae..%20/admin", 6 },
		{ "/public/::$DATA/%2f%252f..;/admin", 62 },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct eg_readings r, all;
		assert_int_equal(eg_readings_compute(cases[c].target, &r), 0);
		assert_int_equal(eg_readings_compute_exhaustive(cases[c].target, &all), 0);
		assert_non_null(r.ambiguous);
		assert_int_equal(count_path(&r, "/admin"), 1);
		for (size_t i = 0; i < r.n; i++)
			assert_true(strcasecmp(r.v[i].path, "/admin") == 0 || strncmp(r.v[i].path, "/public/", 8) == 0);
		assert_int_equal(r.n, cases[c].n);
		assert_int_equal(all.n, cases[c].n);
		print_message("%s: %zu readings from %zu compositions (every one: %zu)\n", cases[c].target, r.n,
			      r.resolved, all.resolved);
		assert_true(r.resolved * 3 < all.resolved);
		same_set_as_exhaustive(cases[c].target);
		eg_readings_free(&r);
		eg_readings_free(&all);
	}
}

/* However long, an ambiguous target costs a bounded amount of work: one whose every
 * composition would read 4 KB many times over is refused (bad_path), as past EG_READINGS_MAX. */
static void test_work_bound(void **state)
{
	char *t = malloc(EG_TARGET_MAX + 1);
	strcpy(t, "/pub%5Clic%2F;a/..;/%252e%252e/ADM%C4%B1N.json::$DATA/");
	for (size_t l = strlen(t); l + 9 <= EG_TARGET_MAX; l += 9)
		memcpy(t + l, "abcdefgh/", 10);
	struct eg_readings r;
	assert_int_equal(eg_readings_compute(t, &r), -1);
	assert_int_equal(r.n, 0);
	assert_int_equal(eg_readings_compute_exhaustive(t, &r), 0); /* readable, at 30 times the cost */
	eg_readings_free(&r);
	/* the same target, short, is read */
	assert_int_equal(eg_readings_compute("/pub%5Clic%2F;a/..;/%252e%252e/ADM%C4%B1N.json::$DATA/abcdefgh/", &r), 0);
	assert_non_null(r.ambiguous);
	eg_readings_free(&r);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dot_segments), cmocka_unit_test(test_double_encoding), cmocka_unit_test(test_property_regressions),
		cmocka_unit_test(test_params),       cmocka_unit_test(test_slashes),
		cmocka_unit_test(test_separators),   cmocka_unit_test(test_case_and_compat),
		cmocka_unit_test(test_windows),      cmocka_unit_test(test_suffix),
		cmocka_unit_test(test_ambiguous),
		cmocka_unit_test(test_benign),       cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_fast_path_corpus), cmocka_unit_test(test_fast_path_taken),
		cmocka_unit_test(test_pruning_corpus), cmocka_unit_test(test_lone_reading),
		cmocka_unit_test(test_work_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
