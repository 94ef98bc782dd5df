/* test_util.c - encodings, compare, forms, files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "util.h"

static long dec(const char *s, uint8_t *out)
{
	return b64url_decode(s, strlen(s), out);
}

static void b64url_roundtrip(void **state)
{
	uint8_t in[64], out[b64url_decoded_max(100)];
	char enc[b64url_encoded_len(64) + 1];
	size_t n;

	for (n = 0; n <= sizeof(in); n++) {
		size_t i, el;
		for (i = 0; i < n; i++)
			in[i] = (uint8_t)(i * 37 + n);
		el = b64url_encode(in, n, enc);
		assert_int_equal(el, strlen(enc));
		assert_null(strchr(enc, '='));
		assert_int_equal(dec(enc, out), (long)n);
		assert_memory_equal(in, out, n);
	}
	/* RFC 4648 vectors, unpadded */
	assert_int_equal(dec("", out), 0);
	assert_int_equal(dec("Zg", out), 1);
	assert_int_equal(dec("Zm8", out), 2);
	assert_int_equal(dec("Zm9v", out), 3);
	assert_memory_equal(out, "foo", 3);
	assert_int_equal(dec("Zm9vYmFy", out), 6);
	/* url alphabet */
	assert_int_equal(dec("-_8", out), 2);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(out[1], 0xff);
}

static void b64url_strict(void **state)
{
	static const char *bad[] = {
		"Zg==", "Zg=", "Zm8=", "Z",   "Zm9vY", /* padding, dangling char */
		"Zh",   "Zm9",			/* non-zero trailing bits */
		"+/8",  "Zm 9", "Zm\n9v", "Zm.9", "Zm9v=",
	};
	uint8_t out[32];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (dec(bad[i], out) >= 0)
			fail_msg("accepted %s", bad[i]);
	/* embedded NUL with explicit length */
	assert_int_equal(b64url_decode("Zm\0v", 4, out), -1);
}

/* Every single-byte change of a valid token, at every position of a long one (the
 * sixteen-byte steps) and of the short tail, against the decoder's own verdict: a byte
 * outside the alphabet fails whether it falls in a whole quad or in the remainder. */
static void b64url_bad_byte_anywhere(void **state)
{
	uint8_t in[80], out[b64url_decoded_max(120)], ref[80];
	char enc[b64url_encoded_len(80) + 1];

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 91 + 7);
	for (size_t n = 1; n <= sizeof(in); n += 13) {
		size_t el = b64url_encode(in, n, enc);
		assert_int_equal(b64url_decode(enc, el, ref), (long)n);
		assert_memory_equal(ref, in, n);
		for (size_t pos = 0; pos < el; pos++) {
			char keep = enc[pos];
			for (int c = 0; c < 256; c++) {
				bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
					     c == '-' || c == '_';
				if (alpha)
					continue;
				enc[pos] = (char)c;
				if (b64url_decode(enc, el, out) != -1)
					fail_msg("length %zu: byte 0x%02x at %zu accepted", el, c, pos);
			}
			enc[pos] = keep;
		}
	}
}

/* The sixteen-byte classifier against the definition, for every byte at every offset of a
 * block and of the tail. */
static void b64token_alphabet(void **state)
{
	char s[48];

	for (int c = 0; c < 256; c++) {
		bool want = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			    (c && strchr("-_.~+/=", c));
		for (size_t len = 1; len <= sizeof(s); len += 5)
			for (size_t pos = 0; pos < len; pos++) {
				memset(s, 'A', sizeof(s));
				s[pos] = (char)c;
				if (b64token_chars_ok(s, len) != want)
					fail_msg("byte 0x%02x at %zu of %zu: %d", c, pos, len, !want);
			}
	}
	assert_true(b64token_chars_ok("", 0));
	assert_true(b64token_chars_ok("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_~+/=", 47));
}

static void b64_standard(void **state)
{
	uint8_t out[32];

	assert_int_equal(b64_decode("Zm9vYg==", 8, out), 4);
	assert_memory_equal(out, "foob", 4);
	assert_int_equal(b64_decode("Zm9vYmE=", 8, out), 5);
	assert_int_equal(b64_decode("Zm9vYmFy", 8, out), 6);
	assert_int_equal(b64_decode("", 0, out), 0);
	assert_int_equal(b64_decode("+/8=", 4, out), 2);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(b64_decode("Zm9vYg", 6, out), -1);    /* padding required */
	assert_int_equal(b64_decode("Zm9vYh==", 8, out), -1);  /* non-canonical */
	assert_int_equal(b64_decode("Zm=vYg==", 8, out), -1);  /* padding in the middle */
	assert_int_equal(b64_decode("Zg===", 5, out), -1);
	assert_int_equal(b64_decode("Z===", 4, out), -1);
	assert_int_equal(b64_decode("-_8=", 4, out), -1);      /* url alphabet */
	assert_int_equal(b64_decode("Zm9v\nYg==", 9, out), -1);
}

static void constant_time_equal(void **state)
{
	assert_true(ct_equal("abc", "abc", 3));
	assert_false(ct_equal("abc", "abd", 3));
	assert_false(ct_equal("\x00\x01", "\x80\x01", 2));
	assert_true(ct_equal("", "x", 0));
}

/* ct_equal_words: every length from 0 to 80 (the 16- and 8-byte steps and the tail), a
 * difference in each position and in each bit of a byte is seen. */
static void constant_time_equal_words(void **state)
{
	uint8_t a[80], b[80];
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (uint8_t)(i * 7 + 1);
	for (size_t len = 0; len <= sizeof(a); len++) {
		assert_true(ct_equal_words(a, b, len));
		for (size_t pos = 0; pos < len; pos++)
			for (int bit = 0; bit < 8; bit++) {
				b[pos] ^= (uint8_t)(1u << bit);
				assert_false(ct_equal_words(a, b, len));
				b[pos] ^= (uint8_t)(1u << bit);
			}
		if (len < sizeof(a)) { /* a byte past len is not compared */
			b[len] ^= 1;
			assert_true(ct_equal_words(a, b, len));
			b[len] ^= 1;
		}
	}
}

static void hex(void **state)
{
	uint8_t b[4] = { 0x00, 0xab, 0x7f, 0xff }, o[4];
	char s[9];

	hex_encode(b, 4, s);
	assert_string_equal(s, "00ab7fff");
	assert_int_equal(hex_decode("00AB7fFF", o, 4), 0);
	assert_memory_equal(o, b, 4);
	assert_int_equal(hex_decode("00ab7f", o, 4), -1);
	assert_int_equal(hex_decode("00ab7fff00", o, 4), -1);
	assert_int_equal(hex_decode("00ab7fgg", o, 4), -1);
}

static void percent(void **state)
{
	char out[64], *e;

	assert_int_equal(pct_decode("a%20b%2Fc", 9, out), 5);
	assert_string_equal(out, "a b/c");
	assert_int_equal(pct_decode("a+b", 3, out), 3);
	assert_string_equal(out, "a+b");
	assert_int_equal(pct_decode("%41%6a", 6, out), 2);
	assert_string_equal(out, "Aj");
	assert_int_equal(pct_decode("%", 1, out), -1);
	assert_int_equal(pct_decode("%4", 2, out), -1);
	assert_int_equal(pct_decode("ab%4", 4, out), -1);
	assert_int_equal(pct_decode("%zz", 3, out), -1);
	assert_int_equal(pct_decode("a%00b", 5, out), -1);
	assert_int_equal(pct_decode("a\0b", 3, out), -1);
	/* length bounds the input: "%41" cut after two chars */
	assert_int_equal(pct_decode("%41", 2, out), -1);

	e = pct_encode("a b/c~d-_.é");
	assert_string_equal(e, "a%20b%2Fc~d-_.%C3%A9");
	free(e);
	e = pct_encode("");
	assert_string_equal(e, "");
	free(e);
}

static void form(void **state)
{
	const char *b = "a=1&code=x%2By+z&dup=1&dup=2&empty=&flag&bad=%zz&n%61me=v";
	int n = -1;
	char *v;

	v = form_get(b, strlen(b), "code", &n);
	assert_string_equal(v, "x+y z");
	assert_int_equal(n, 1);
	free(v);
	v = form_get(b, strlen(b), "dup", &n);
	assert_int_equal(n, 2); /* caller treats duplicates as an error */
	assert_non_null(v);
	free(v);
	v = form_get(b, strlen(b), "empty", &n);
	assert_string_equal(v, "");
	free(v);
	v = form_get(b, strlen(b), "flag", &n);
	assert_string_equal(v, "");
	assert_int_equal(n, 1);
	free(v);
	v = form_get(b, strlen(b), "missing", &n);
	assert_null(v);
	assert_int_equal(n, 0);
	v = form_get(b, strlen(b), "bad", &n);
	assert_null(v); /* malformed escapes never come back */
	assert_int_equal(n, 1);
	v = form_get(b, strlen(b), "name", &n); /* names are decoded too */
	assert_string_equal(v, "v");
	free(v);
	/* the length bounds the body */
	v = form_get(b, 3, "a", &n);
	assert_string_equal(v, "1");
	free(v);
	/* a body that fills its buffer exactly, no terminator: nothing is read or pointed
	 * at past its end (issue 17), trailing '&' included */
	static const char *const tight[] = { "k=v", "k=v&", "x&k=v", "&", "k" };
	for (size_t i = 0; i < sizeof(tight) / sizeof(tight[0]); i++) {
		size_t tl = strlen(tight[i]);
		char *heap = malloc(tl);
		memcpy(heap, tight[i], tl);
		v = form_get(heap, tl, "k", &n);
		assert_int_equal(n, strcmp(tight[i], "&") == 0 ? 0 : 1);
		free(v);
		free(heap);
	}
	v = form_get("", 0, "a", &n);
	assert_null(v);
	assert_int_equal(n, 0);
}

static void files(void **state)
{
	char dir[] = "/tmp/eg_util_XXXXXX", *path, *d;
	struct stat st;
	size_t n;

	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/secret", dir);
	assert_int_equal(write_file_atomic(path, "hello", 5, 0600), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	d = read_file(path, 100, &n);
	assert_non_null(d);
	assert_int_equal(n, 5);
	assert_string_equal(d, "hello");
	free(d);
	/* replaced atomically with new content and mode */
	assert_int_equal(write_file_atomic(path, "bye", 3, 0640), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	d = read_file(path, 3, &n);
	assert_string_equal(d, "bye");
	free(d);
	/* over the limit */
	errno = 0;
	assert_null(read_file(path, 2, &n));
	assert_int_equal(errno, EFBIG);
	/* missing file, unwritable dir */
	assert_null(read_file("/nonexistent/eg", 10, &n));
	assert_int_equal(write_file_atomic("/nonexistent/eg/x", "a", 1, 0600), -1);
	unlink(path);
	assert_int_equal(rmdir(dir), 0); /* no temp file left behind */
	free(path);
}

static void strings_and_misc(void **state)
{
	uint8_t a[16] = { 0 }, b[16] = { 0 };
	uint64_t t1, t2;
	char *s;

	assert_true(str_ieq("Bearer", "bEARER"));
	assert_false(str_ieq("Bearer", "Bearer "));
	assert_false(str_ieq("", "a"));
	assert_true(str_iends_with("App.Example.TEST", ".example.test"));
	assert_false(str_iends_with("test", "a.test"));
	assert_int_equal(random_bytes(a, sizeof(a)), 0);
	assert_int_equal(random_bytes(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	t1 = now_mono_ns();
	t2 = now_mono_ns();
	assert_true(t2 >= t1);
	assert_true(now_realtime_s() > 1700000000);
	s = xasprintf("%s-%d", "x", 42);
	assert_string_equal(s, "x-42");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(b64url_roundtrip), cmocka_unit_test(b64url_strict),
		cmocka_unit_test(b64_standard), cmocka_unit_test(b64url_bad_byte_anywhere), cmocka_unit_test(b64token_alphabet),	    cmocka_unit_test(constant_time_equal), cmocka_unit_test(constant_time_equal_words),
		cmocka_unit_test(hex),		    cmocka_unit_test(percent),
		cmocka_unit_test(form),		    cmocka_unit_test(files),
		cmocka_unit_test(strings_and_misc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
