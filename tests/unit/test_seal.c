/* test_seal.c - AES-256-GCM sealing: round trip, tamper, wrong key/AAD, HKDF vectors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "seal.h"
#include "util.h"

static void test_hkdf_rfc5869_case1(void **state)
{
	/* RFC 5869 A.1: IKM 22x0x0b, salt 000102..0c, info f0..f9; first 32 bytes of OKM. */
	uint8_t ikm[22], salt[13], key[32];
	char info[11], hex[65];

	memset(ikm, 0x0b, sizeof(ikm));
	for (int i = 0; i < 13; i++)
		salt[i] = (uint8_t)i;
	for (int i = 0; i < 10; i++)
		info[i] = (char)(0xf0 + i);
	info[10] = 0;
	assert_int_equal(eg_seal_derive(ikm, sizeof(ikm), salt, sizeof(salt), info, key), 0);
	hex_encode(key, 32, hex);
	assert_string_equal(hex, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");
}

static void test_derive_separates_purposes(void **state)
{
	uint8_t a[32], b[32], c[32];

	assert_int_equal(eg_seal_derive("secret", 6, NULL, 0, "edgegate state v1", a), 0);
	assert_int_equal(eg_seal_derive("secret", 6, NULL, 0, "edgegate session v1", b), 0);
	assert_int_equal(eg_seal_derive("secreT", 6, NULL, 0, "edgegate state v1", c), 0);
	assert_memory_not_equal(a, b, 32);
	assert_memory_not_equal(a, c, 32);
	assert_int_equal(eg_seal_derive("", 0, NULL, 0, "x", a), -1);
}

static void test_roundtrip_text(void **state)
{
	uint8_t key[32];
	const char *msg = "{\"state\":\"abc\",\"nonce\":\"n\"}";
	size_t n = 0;

	memset(key, 7, sizeof(key));
	char *s1 = eg_seal(key, "cookie-a", msg, strlen(msg));
	char *s2 = eg_seal(key, "cookie-a", msg, strlen(msg));
	assert_non_null(s1);
	assert_non_null(s2);
	assert_string_not_equal(s1, s2); /* fresh nonce each time */
	for (const char *p = s1; *p; p++) /* cookie-safe alphabet */
		assert_true(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
	char *pt = eg_unseal(key, "cookie-a", s1, strlen(s1), &n);
	assert_non_null(pt);
	assert_int_equal(n, strlen(msg));
	assert_string_equal(pt, msg);
	free(pt);
	/* wrong AAD, wrong key */
	assert_null(eg_unseal(key, "cookie-b", s1, strlen(s1), &n));
	key[0] ^= 1;
	assert_null(eg_unseal(key, "cookie-a", s1, strlen(s1), &n));
	free(s1);
	free(s2);
}

static void test_tamper_every_byte(void **state)
{
	uint8_t key[32], blob[64 + EG_SEAL_OVERHEAD], out[64];
	const char *msg = "hello sealed world";
	long n;

	memset(key, 3, sizeof(key));
	n = eg_seal_raw(key, "aad", msg, strlen(msg), blob);
	assert_int_equal(n, (long)(strlen(msg) + EG_SEAL_OVERHEAD));
	assert_int_equal(eg_unseal_raw(key, "aad", blob, (size_t)n, out), (long)strlen(msg));
	assert_memory_equal(out, msg, strlen(msg));
	for (long i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			blob[i] ^= (uint8_t)(1u << bit);
			if (eg_unseal_raw(key, "aad", blob, (size_t)n, out) >= 0)
				fail_msg("tampered byte %ld bit %d accepted", i, bit);
			blob[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* truncation */
	for (long k = 0; k < n; k++)
		assert_true(eg_unseal_raw(key, "aad", blob, (size_t)k, out) < 0);
}

static void test_empty_and_garbage(void **state)
{
	uint8_t key[32];
	size_t n = 99;

	memset(key, 1, sizeof(key));
	char *s = eg_seal(key, NULL, "", 0);
	assert_non_null(s);
	char *pt = eg_unseal(key, NULL, s, strlen(s), &n);
	assert_non_null(pt);
	assert_int_equal(n, 0);
	free(pt);
	free(s);
	assert_null(eg_unseal(key, NULL, "", 0, &n));
	assert_null(eg_unseal(key, NULL, "!!!!", 4, &n));
	assert_null(eg_unseal(key, NULL, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 44, &n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hkdf_rfc5869_case1),
		cmocka_unit_test(test_derive_separates_purposes),
		cmocka_unit_test(test_roundtrip_text),
		cmocka_unit_test(test_tamper_every_byte),
		cmocka_unit_test(test_empty_and_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
