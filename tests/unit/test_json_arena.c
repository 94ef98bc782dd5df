/* test_json_arena.c - the claims trees' blocks (json_arena.c): trees share blocks, a block
 * comes back only when everything in it is freed (a child that outlives its root keeps it),
 * frees from other threads and thread exits return blocks, large values and what jansson
 * hands its callers stay plain malloc (ASan would call a free() of arena memory a bad free),
 * steady parse-and-free does not grow the number of blocks in use, and blocks whose pages
 * were returned to the kernel are used again. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json_arena.h"
#include "json_fast.h"
#include "testutil.h"

/* An 11-member claims set like the bench's, distinct per n. */
static json_t *claims(unsigned n)
{
	char doc[512];
	int len = snprintf(doc, sizeof(doc) - EG_JSON_PADDING,
			   "{\"iss\":\"https://idp.example.test\",\"sub\":\"user-%u\",\"aud\":\"api://bench\","
			   "\"exp\":%u,\"iat\":1700000000,\"nbf\":1700000000,\"jti\":\"j%u\","
			   "\"email\":\"u%u@example.test\",\"email_verified\":true,\"scope\":\"read write\","
			   "\"groups\":[\"staff\",\"ops\"]}",
			   n, 1800000000u + n, n, n);
	memset(doc + len, 0, EG_JSON_PADDING);
	json_t *j = eg_json_object_parse(doc, (size_t)len);
	assert_non_null(j);
	return j;
}

static size_t in_use(void)
{
	size_t u;
	eg_json_arena_stats(&u, NULL);
	return u;
}

static size_t taken(void)
{
	size_t t;
	eg_json_arena_stats(NULL, &t);
	return t;
}

static void trees_share_blocks(void **state)
{
	(void)state;
	enum { N = 1000 };
	json_t *t[N];
	size_t t0 = taken();

	for (unsigned i = 0; i < N; i++)
		t[i] = claims(i);
	/* about 1.5 KiB a tree in 4 KiB blocks: far fewer blocks than trees */
	size_t blocks = taken() - t0;
	printf("# %d trees in %zu blocks\n", N, blocks);
	assert_true(blocks > N / 10 && blocks < N / 2);
	for (unsigned i = 0; i < N; i++) {
		char sub[32];
		snprintf(sub, sizeof(sub), "user-%u", i);
		assert_string_equal(json_string_value(json_object_get(t[i], "sub")), sub);
		assert_int_equal(json_integer_value(json_object_get(t[i], "exp")), 1800000000 + i);
		assert_int_equal(json_array_size(json_object_get(t[i], "groups")), 2);
	}
	/* freed out of order: every block comes back but the one this thread is filling */
	for (unsigned i = 0; i < N; i += 2)
		json_decref(t[i]);
	for (unsigned i = 1; i < N; i += 2)
		json_decref(t[i]);
	assert_int_equal(in_use(), 1);
}

static void child_outlives_root(void **state)
{
	(void)state;
	json_t *root = claims(7);
	json_t *groups = json_incref(json_object_get(root, "groups"));
	json_t *sub = json_incref(json_object_get(root, "sub"));

	json_decref(root);
	/* fill past the block the root was in: it must stay while its children live */
	json_t *more[100];
	for (unsigned i = 0; i < 100; i++)
		more[i] = claims(1000 + i);
	assert_string_equal(json_string_value(sub), "user-7");
	assert_string_equal(json_string_value(json_array_get(groups, 1)), "ops");
	/* changed outside the arena: the array's new table is malloc'd, the old one (arena) freed */
	for (int i = 0; i < 20; i++)
		assert_int_equal(json_array_append_new(groups, json_integer(i)), 0);
	assert_int_equal(json_array_size(groups), 22);
	assert_true(in_use() >= 2);
	json_decref(sub);
	json_decref(groups);
	for (unsigned i = 0; i < 100; i++)
		json_decref(more[i]);
	assert_int_equal(in_use(), 1);
}

static void large_values_and_dumps(void **state)
{
	(void)state;
	size_t n = 6000;
	char *doc = malloc(n + 64 + EG_JSON_PADDING);
	assert_non_null(doc);
	int len = sprintf(doc, "{\"big\":\"");
	memset(doc + len, 'x', n);
	len += (int)n;
	len += sprintf(doc + len, "\",\"k\":1}");
	memset(doc + len, 0, EG_JSON_PADDING);
	json_t *j = eg_json_object_parse(doc, (size_t)len);
	free(doc);
	assert_non_null(j);
	assert_int_equal(json_string_length(json_object_get(j, "big")), n);
	/* jansson's caller frees this with free(): it must never be arena memory */
	char *s = json_dumps(j, JSON_COMPACT);
	assert_non_null(s);
	/* a hint: nothing for memory outside the region, and never past a block's end */
	eg_json_arena_prefetch(NULL);
	eg_json_arena_prefetch(s);
	eg_json_arena_prefetch(j);
	eg_json_arena_prefetch(json_object_get(j, "k"));
	assert_int_equal(strlen(s), n + 16);
	free(s);
	json_decref(j);
	assert_int_equal(in_use(), 1);
}

struct half {
	json_t **t;
	unsigned from, to;
	bool parse; /* the other only frees: its pending count is taken off when it exits */
	json_t *own[50];
};

static void *free_half(void *arg)
{
	struct half *h = arg;
	for (unsigned i = h->from; i < h->to; i++)
		json_decref(h->t[i]);
	/* and trees of its own, which outlive the thread's block and the thread */
	for (unsigned i = 0; h->parse && i < 50; i++)
		h->own[i] = claims(5000 + i);
	return NULL;
}

static void other_threads_free(void **state)
{
	(void)state;
	enum { N = 400 };
	json_t *t[N];
	pthread_t th[2];
	struct half h[2] = { { t, 0, N / 2, true, { 0 } }, { t, N / 2, N, false, { 0 } } };

	for (unsigned i = 0; i < N; i++)
		t[i] = claims(i);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, free_half, &h[i]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	/* the first thread's trees are still readable after it ended */
	for (unsigned k = 0; k < 50; k++)
		assert_int_equal(json_integer_value(json_object_get(h[0].own[k], "exp")), 1800005000 + k);
	for (unsigned k = 0; k < 50; k++)
		json_decref(h[0].own[k]);
	/* their open blocks were closed and their pending frees counted when they exited */
	assert_int_equal(in_use(), 1);
}

static void steady_state_is_bounded(void **state)
{
	(void)state;
	/* a ring of 256 kept, the oldest freed, as the verdict cache does */
	enum { RING = 256 };
	json_t *ring[RING] = { 0 };
	size_t most = 0;

	for (unsigned i = 0; i < 100000; i++) {
		json_decref(ring[i % RING]);
		ring[i % RING] = claims(i);
		if (i > RING && in_use() > most)
			most = in_use();
	}
	printf("# at most %zu blocks in use for %d live trees\n", most, RING);
	assert_true(most <= RING / 2 + 2);
	for (unsigned i = 0; i < RING; i++)
		json_decref(ring[i]);
	assert_int_equal(in_use(), 1);
}

/* More free blocks than the arena keeps committed: the rest have their pages returned
 * (madvise) and come back as zero pages when taken again. */
static void blocks_past_the_kept_ones(void **state)
{
	(void)state;
	enum { N = 4000 };
	json_t **t = calloc(N, sizeof(*t));
	assert_non_null(t);
	for (int round = 0; round < 2; round++) {
		for (unsigned i = 0; i < N; i++)
			t[i] = claims(round * N + i);
		assert_true(in_use() > 1024);
		for (unsigned i = 0; i < N; i++) {
			char sub[32];
			snprintf(sub, sizeof(sub), "user-%u", round * N + i);
			assert_string_equal(json_string_value(json_object_get(t[i], "sub")), sub);
		}
		for (unsigned i = 0; i < N; i++)
			json_decref(t[i]);
		assert_int_equal(in_use(), 1);
	}
	free(t);
}

int main(void)
{
	const char *off = getenv("EG_JSON_ARENA");
	if (off && strcmp(off, "0") == 0) {
		printf("1..0 # SKIP EG_JSON_ARENA=0: the arena is off\n");
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(trees_share_blocks),
		cmocka_unit_test(child_outlives_root),
		cmocka_unit_test(large_values_and_dumps),
		cmocka_unit_test(other_threads_free),
		cmocka_unit_test(steady_state_is_bounded),
		cmocka_unit_test(blocks_past_the_kept_ones),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
