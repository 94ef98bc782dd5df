/* test_tokcache.c - the bearer verdict cache and its hash (SipHash-1-3; 2-4 for the certificate cache). */
#include <stdlib.h>
#include <string.h>

#include "siphash.h"
#include "testutil.h"
#include "tokcache.h"

/* The paper's vectors (SipHash-2-4, key 00..0f, message 00..len-1). */
static void siphash_vectors(void **state)
{
	uint8_t key[16], msg[64];
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	assert_true(eg_siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ull);
	assert_true(eg_siphash24(key, msg, 1) == 0x74f839c593dc67fdull);
	assert_true(eg_siphash24(key, msg, 8) == 0x93f5f5799a932462ull);
	assert_true(eg_siphash24(key, msg, 15) == 0xa129ca6149be45e5ull);
	assert_true(eg_siphash24(key, msg, 63) == 0x958a324ceb064572ull);
}

/* SipHash-1-3, same key and messages; the values are OpenSSL's SIPHASH MAC with c-rounds 1,
 * d-rounds 3 (its output bytes read as a little-endian word). */
static void siphash13_vectors(void **state)
{
	uint8_t key[16], msg[64];
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	assert_true(eg_siphash13(key, msg, 0) == 0xabac0158050fc4dcull);
	assert_true(eg_siphash13(key, msg, 1) == 0xc9f49bf37d57ca93ull);
	assert_true(eg_siphash13(key, msg, 8) == 0x369095118d299a8eull);
	assert_true(eg_siphash13(key, msg, 15) == 0xd320d86d2a519956ull);
	assert_true(eg_siphash13(key, msg, 63) == 0x9d199062b7bbb3a8ull);
}

static char *token(int i, size_t len)
{
	char *t = malloc(len + 1);
	memset(t, 'a' + i % 26, len);
	t[len] = '\0';
	memcpy(t, &i, sizeof(i) < len ? sizeof(i) : len);
	return t;
}

static void hits_are_proven(void **state)
{
	struct eg_verdict_cache *c = eg_tokcache_new(64);
	json_t *claims = json_pack("{s:s}", "sub", "alice");
	uint8_t fp[32], got_fp[32];
	memset(fp, 7, sizeof(fp));
	char *t1 = token(1, 700), *t2 = token(1, 700);
	t2[699] ^= 1; /* the same but for the last byte */
	json_t *out = NULL;
	int err = -1;

	assert_int_equal(eg_tokcache_get(c, t1, 700, 1000, &out, &err, got_fp), 0);
	eg_tokcache_put(c, t1, 700, 2000, claims, 0, fp);
	assert_int_equal(eg_tokcache_get(c, t1, 700, 1000, &out, &err, got_fp), 1);
	assert_ptr_equal(out, claims);
	assert_memory_equal(got_fp, fp, 32);
	json_decref(out);
	/* a token that differs in one byte, or a prefix of it, is not that token */
	assert_int_equal(eg_tokcache_get(c, t2, 700, 1000, &out, &err, NULL), 0);
	assert_int_equal(eg_tokcache_get(c, t1, 699, 1000, &out, &err, NULL), 0);
	/* the entry holds a copy: changing the caller's buffer does not change it */
	t1[10] ^= 1;
	assert_int_equal(eg_tokcache_get(c, t1, 700, 1000, &out, &err, NULL), 0);
	t1[10] ^= 1;
	/* expired at until */
	assert_int_equal(eg_tokcache_get(c, t1, 700, 2000, &out, &err, NULL), 0);
	assert_int_equal(eg_tokcache_get(c, t1, 700, 1000, &out, &err, NULL), 0); /* and gone */
	/* negative entries (kept as a digest) */
	eg_tokcache_put(c, t2, 700, 2000, NULL, 42, NULL);
	out = (json_t *)1;
	assert_int_equal(eg_tokcache_get(c, t2, 700, 1000, &out, &err, NULL), 1);
	assert_null(out);
	assert_int_equal(err, 42);
	assert_int_equal(eg_tokcache_get(c, t1, 700, 1000, &out, &err, NULL), 0);
	/* a positive verdict replaces the negative one of the same token */
	eg_tokcache_put(c, t2, 700, 2000, claims, 0, fp);
	assert_int_equal(eg_tokcache_get(c, t2, 700, 1000, &out, &err, NULL), 1);
	assert_ptr_equal(out, claims);
	json_decref(out);
	eg_tokcache_drop(c, t2, 700);
	assert_int_equal(eg_tokcache_get(c, t2, 700, 1000, &out, &err, NULL), 0);
	/* an empty token is a token like any other */
	eg_tokcache_put(c, "", 0, 2000, NULL, 3, NULL);
	assert_int_equal(eg_tokcache_get(c, "", 0, 1000, &out, &err, NULL), 1);
	assert_int_equal(err, 3);
	free(t1);
	free(t2);
	json_decref(claims);
	eg_tokcache_free(c);
}

/* One set of four ways: every token shares it, the least recently used one leaves. */
static void one_set_evicts_lru(void **state)
{
	struct eg_verdict_cache *c = eg_tokcache_new(4);
	json_t *claims = json_pack("{s:s}", "sub", "bob");
	char *t[6];
	json_t *out;
	int err;
	for (int i = 0; i < 6; i++)
		t[i] = token(i, 40 + (size_t)i % 2);
	for (int i = 0; i < 4; i++)
		eg_tokcache_put(c, t[i], strlen(t[i]), 2000, i % 2 ? claims : NULL, i, NULL);
	for (int i = 0; i < 4; i++) {
		out = NULL;
		assert_int_equal(eg_tokcache_get(c, t[i], strlen(t[i]), 1000, &out, &err, NULL), 1);
		assert_int_equal(out != NULL, i % 2);
		if (out)
			json_decref(out);
		else
			assert_int_equal(err, i);
	}
	assert_int_equal(eg_tokcache_get(c, t[1], strlen(t[1]), 1000, &out, &err, NULL), 1); /* t[0] is now the oldest */
	json_decref(out);
	eg_tokcache_put(c, t[4], strlen(t[4]), 2000, claims, 0, NULL);
	assert_int_equal(eg_tokcache_get(c, t[0], strlen(t[0]), 1000, &out, &err, NULL), 0);
	assert_int_equal(eg_tokcache_get(c, t[4], strlen(t[4]), 1000, &out, &err, NULL), 1);
	json_decref(out);
	eg_tokcache_clear(c);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(eg_tokcache_get(c, t[i], strlen(t[i]), 1000, &out, &err, NULL), 0);
		free(t[i]);
	}
	json_decref(claims);
	eg_tokcache_free(c);
}

/* A caller that hashes the token once (the verdict's miss path) gets the same cache as one
 * that does not; an evicted entry's claims stay valid for whoever still holds them. */
static void tagged_calls(void **state)
{
	struct eg_verdict_cache *c = eg_tokcache_new(4); /* one set: every put after four evicts */
	json_t *claims = json_pack("{s:s}", "sub", "carol"), *out = NULL, *held = NULL;
	char *t[6];
	int err;
	for (int i = 0; i < 6; i++)
		t[i] = token(10 + i, 300);
	uint64_t tag0 = eg_tokcache_tag(c, t[0], 300);
	assert_true(tag0 == eg_tokcache_tag(c, t[0], 300));
	assert_int_equal(eg_tokcache_get_at(c, t[0], 300, tag0, 1000, &out, &err, NULL), 0);
	eg_tokcache_put_at(c, t[0], 300, tag0, 2000, claims, 0, NULL);
	assert_int_equal(eg_tokcache_get(c, t[0], 300, 1000, &held, &err, NULL), 1); /* untagged finds it */
	assert_ptr_equal(held, claims);
	eg_tokcache_put(c, t[1], 300, 2000, NULL, 5, NULL);
	assert_int_equal(eg_tokcache_get_at(c, t[1], 300, eg_tokcache_tag(c, t[1], 300), 1000, &out, &err, NULL), 1);
	assert_int_equal(err, 5);
	for (int i = 2; i < 6; i++) /* evicts t[0] and t[1] */
		eg_tokcache_put_at(c, t[i], 300, eg_tokcache_tag(c, t[i], 300), 2000, claims, 0, NULL);
	assert_int_equal(eg_tokcache_get(c, t[0], 300, 1000, &out, &err, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(held, "sub")), "carol");
	json_decref(held);
	for (int i = 0; i < 6; i++)
		free(t[i]);
	json_decref(claims);
	eg_tokcache_free(c);
}

/* A JWS's tag hashes only its signature's tail: tokens that differ before it share a set
 * and a tag, and are still told apart on every byte, positive or negative. */
static void shared_tail_is_proven(void **state)
{
	struct eg_verdict_cache *c = eg_tokcache_new(64);
	json_t *claims = json_pack("{s:s}", "sub", "dave"), *out = NULL;
	int err = -1;
	char *t[5];
	for (int i = 0; i < 5; i++) {
		t[i] = token(0, 700);
		t[i][36] = t[i][450] = '.'; /* header.payload.signature */
		t[i][i * 100 + 50] = (char)('A' + i); /* the last 200 bytes are the same in all */
	}
	for (int i = 0; i < 5; i++)
		assert_true(eg_tokcache_tag(c, t[i], 700) == eg_tokcache_tag(c, t[0], 700));
	eg_tokcache_put(c, t[0], 700, 2000, claims, 0, NULL);
	eg_tokcache_put(c, t[1], 700, 2000, NULL, 9, NULL);
	for (int i = 2; i < 5; i++) /* same tag, other bytes: no hit on either entry */
		assert_int_equal(eg_tokcache_get(c, t[i], 700, 1000, &out, &err, NULL), 0);
	assert_int_equal(eg_tokcache_get(c, t[0], 700, 1000, &out, &err, NULL), 1);
	assert_ptr_equal(out, claims);
	json_decref(out);
	assert_int_equal(eg_tokcache_get(c, t[1], 700, 1000, &out, &err, NULL), 1);
	assert_null(out);
	assert_int_equal(err, 9);
	/* a fifth token with that tail evicts within its set (four ways) and nowhere else */
	for (int i = 2; i < 5; i++)
		eg_tokcache_put(c, t[i], 700, 2000, claims, 0, NULL);
	int held = 0;
	for (int i = 0; i < 5; i++) {
		if (eg_tokcache_get(c, t[i], 700, 1000, &out, &err, NULL)) {
			held++;
			json_decref(out);
		}
	}
	assert_int_equal(held, 4);
	for (int i = 0; i < 5; i++)
		free(t[i]);
	json_decref(claims);
	eg_tokcache_free(c);
}

/* Only a signature's tail stands for the token: a token without a '.' (opaque, for
 * introspection) or whose last segment is shorter than the tail (a JWE's tag) is hashed
 * whole, so a fixed suffix does not put all of them in one set. */
static void other_tokens_hashed_whole(void **state)
{
	struct eg_verdict_cache *c = eg_tokcache_new(64);
	char *a = token(0, 300), *b = token(0, 300);
	b[0] = 'Z'; /* opaque: differ only in the first byte */
	assert_true(eg_tokcache_tag(c, a, 300) != eg_tokcache_tag(c, b, 300));
	a[100] = b[100] = '.';
	a[290] = b[290] = '.'; /* a last segment of 9 bytes */
	assert_true(eg_tokcache_tag(c, a, 300) != eg_tokcache_tag(c, b, 300));
	a[290] = b[290] = 'x'; /* now a 199-byte last segment: its tail stands for both */
	assert_true(eg_tokcache_tag(c, a, 300) == eg_tokcache_tag(c, b, 300));
	free(a);
	free(b);
	eg_tokcache_free(c);
}

/* Two caches have different hash keys: the same token, different sets (almost surely). */
static void keys_differ(void **state)
{
	uint8_t a[16] = { 0 }, b[16] = { 1 };
	assert_true(eg_siphash24(a, "token", 5) != eg_siphash24(b, "token", 5));
	assert_true(eg_siphash13(a, "token", 5) != eg_siphash13(b, "token", 5));
	struct eg_verdict_cache *c1 = eg_tokcache_new(64), *c2 = eg_tokcache_new(64);
	assert_true(eg_tokcache_tag(c1, "token", 5) != eg_tokcache_tag(c2, "token", 5));
	eg_tokcache_free(c1);
	eg_tokcache_free(c2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(siphash_vectors),
		cmocka_unit_test(siphash13_vectors),
		cmocka_unit_test(hits_are_proven),
		cmocka_unit_test(one_set_evicts_lru),
		cmocka_unit_test(tagged_calls),
		cmocka_unit_test(shared_tail_is_proven),
		cmocka_unit_test(other_tokens_hashed_whole),
		cmocka_unit_test(keys_differ),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
