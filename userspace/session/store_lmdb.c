/* store_lmdb.c - the embedded store: one LMDB environment, one named database per
 * namespace. Values are stored as an 8-byte big-endian expiry stamp followed by the
 * caller's bytes. LMDB gives crash safety (copy-on-write B+tree, no WAL to replay),
 * concurrent readers without locks and multi-process safety. */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "store.h"

#define DEFAULT_MAP_SIZE ((size_t)1 << 30) /* 1 GiB of address space, sparse on disk */

struct lmdb_store {
	MDB_env *env;
	MDB_dbi dbi[EG_NS__COUNT];
};

static void put_be64(uint8_t *p, int64_t v)
{
	for (int i = 7; i >= 0; i--, v = (int64_t)((uint64_t)v >> 8))
		p[i] = (uint8_t)(v & 0xff);
}

static int64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return (int64_t)v;
}

static int expired(int64_t exp, int64_t now)
{
	return exp != 0 && exp <= now;
}

void *eg_store_lmdb_open(const char *dir, size_t map_size, char *err, size_t errlen)
{
	struct lmdb_store *s = calloc(1, sizeof(*s));
	MDB_txn *txn = NULL;
	int rc;

	if (!s) {
		snprintf(err, errlen, "store: out of memory");
		return NULL;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "store: cannot create %s: %s", dir, strerror(errno));
		free(s);
		return NULL;
	}
	rc = mdb_env_create(&s->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(s->env, EG_NS__COUNT + 2);
	if (rc == 0)
		rc = mdb_env_set_mapsize(s->env, map_size ? map_size : DEFAULT_MAP_SIZE);
	if (rc == 0)
		rc = mdb_env_set_maxreaders(s->env, 512);
	/* MDB_NOTLS: read transactions are not bound to threads (MHD thread pool). */
	if (rc == 0)
		rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0600);
	if (rc == 0)
		rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	for (int i = 0; rc == 0 && i < EG_NS__COUNT; i++)
		rc = mdb_dbi_open(txn, eg_store_ns_name(i), MDB_CREATE, &s->dbi[i]);
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (rc != 0) {
		snprintf(err, errlen, "store: lmdb %s: %s", dir, mdb_strerror(rc));
		if (txn)
			mdb_txn_abort(txn);
		if (s->env)
			mdb_env_close(s->env);
		free(s);
		return NULL;
	}
	/* Readers left by a crashed process would pin old pages forever. */
	int dead = 0;
	mdb_reader_check(s->env, &dead);
	return s;
}

static void lmdb_close(void *impl)
{
	struct lmdb_store *s = impl;

	mdb_env_close(s->env);
	free(s);
}

static long lmdb_gc(void *impl);

static int lmdb_put_once(struct lmdb_store *s, enum eg_store_ns ns, const char *key,
			 const void *val, size_t len, int64_t exp, int only_if_absent)
{
	MDB_txn *txn;
	MDB_val k = { strlen(key), (void *)key }, v, old;
	int rc, ret = 1;

	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc)
		return rc;
	if (only_if_absent) {
		rc = mdb_get(txn, s->dbi[ns], &k, &old);
		if (rc == 0 && old.mv_size >= 8 &&
		    !expired(get_be64(old.mv_data), (int64_t)time(NULL))) {
			mdb_txn_abort(txn);
			return -2; /* exists */
		}
	}
	v.mv_size = len + 8;
	rc = mdb_put(txn, s->dbi[ns], &k, &v, MDB_RESERVE);
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	put_be64(v.mv_data, exp);
	if (len)
		memcpy((uint8_t *)v.mv_data + 8, val, len);
	rc = mdb_txn_commit(txn);
	(void)ret;
	return rc;
}

static int lmdb_put(void *impl, enum eg_store_ns ns, const char *key, const void *val,
		    size_t len, int64_t exp, int only_if_absent)
{
	struct lmdb_store *s = impl;
	int rc = lmdb_put_once(s, ns, key, val, len, exp, only_if_absent);

	if (rc == MDB_MAP_FULL && lmdb_gc(s) > 0)
		rc = lmdb_put_once(s, ns, key, val, len, exp, only_if_absent);
	if (rc == -2)
		return 0;
	if (rc) {
		log_err("store: lmdb put %s: %s", eg_store_ns_name(ns), mdb_strerror(rc));
		return -1;
	}
	return only_if_absent ? 1 : 0;
}

static int lmdb_get(void *impl, enum eg_store_ns ns, const char *key, void **val, size_t *len,
		    int64_t *expires)
{
	struct lmdb_store *s = impl;
	MDB_txn *txn;
	MDB_val k = { strlen(key), (void *)key }, v;
	int rc, ret;

	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc) {
		log_err("store: lmdb read: %s", mdb_strerror(rc));
		return -1;
	}
	rc = mdb_get(txn, s->dbi[ns], &k, &v);
	if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size < 8)) {
		ret = 0;
	} else if (rc) {
		ret = -1;
	} else if (expired(get_be64(v.mv_data), (int64_t)time(NULL))) {
		ret = 0;
	} else {
		size_t n = v.mv_size - 8;
		uint8_t *p = malloc(n + 1);

		if (!p) {
			ret = -1;
		} else {
			memcpy(p, (uint8_t *)v.mv_data + 8, n);
			p[n] = 0; /* convenience for text values */
			if (val)
				*val = p;
			else
				free(p);
			if (len)
				*len = n;
			if (expires)
				*expires = get_be64(v.mv_data);
			ret = 1;
		}
	}
	mdb_txn_abort(txn);
	return ret;
}

static int lmdb_del(void *impl, enum eg_store_ns ns, const char *key)
{
	struct lmdb_store *s = impl;
	MDB_txn *txn;
	MDB_val k = { strlen(key), (void *)key };
	int rc;

	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc)
		return -1;
	rc = mdb_del(txn, s->dbi[ns], &k, NULL);
	if (rc && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return -1;
	}
	return mdb_txn_commit(txn) ? -1 : 0;
}

struct item {
	char *key;
	uint8_t *val;
	size_t len;
	int64_t exp;
};

/* Entries are copied out and the transaction closed before calling back, so the
 * callback may write to the store. */
static int lmdb_foreach(void *impl, enum eg_store_ns ns, const char *prefix, eg_store_iter_fn fn,
			void *arg)
{
	struct lmdb_store *s = impl;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k = { strlen(prefix), (void *)prefix }, v;
	struct item *items = NULL;
	size_t n = 0, cap = 0, plen = strlen(prefix);
	int64_t now = (int64_t)time(NULL);
	int rc, ret = 0;
	MDB_cursor_op op = plen ? MDB_SET_RANGE : MDB_FIRST;

	if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))
		return -1;
	if (mdb_cursor_open(txn, s->dbi[ns], &cur)) {
		mdb_txn_abort(txn);
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, op); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if (v.mv_size < 8 || expired(get_be64(v.mv_data), now))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			struct item *ni = realloc(items, cap * sizeof(*items));
			if (!ni) {
				ret = -1;
				break;
			}
			items = ni;
		}
		items[n].key = strndup(k.mv_data, k.mv_size);
		items[n].len = v.mv_size - 8;
		items[n].val = malloc(items[n].len + 1);
		items[n].exp = get_be64(v.mv_data);
		if (!items[n].key || !items[n].val) {
			free(items[n].key);
			free(items[n].val);
			ret = -1;
			break;
		}
		memcpy(items[n].val, (uint8_t *)v.mv_data + 8, items[n].len);
		items[n].val[items[n].len] = 0;
		n++;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	for (size_t i = 0; i < n; i++) {
		if (ret == 0 && fn(items[i].key, items[i].val, items[i].len, items[i].exp, arg))
			ret = 1;
		free(items[i].key);
		free(items[i].val);
	}
	free(items);
	return ret < 0 ? -1 : 0;
}

static long lmdb_gc(void *impl)
{
	struct lmdb_store *s = impl;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int64_t now = (int64_t)time(NULL);
	long removed = 0;

	if (mdb_txn_begin(s->env, NULL, 0, &txn))
		return -1;
	for (int ns = 0; ns < EG_NS__COUNT; ns++) {
		if (mdb_cursor_open(txn, s->dbi[ns], &cur))
			continue;
		for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			if (v.mv_size < 8 || expired(get_be64(v.mv_data), now)) {
				if (mdb_cursor_del(cur, 0) == 0)
					removed++;
			}
		}
		mdb_cursor_close(cur);
	}
	if (mdb_txn_commit(txn))
		return -1;
	return removed;
}

const struct eg_store_ops eg_store_lmdb_ops = {
	.name = "lmdb",
	.close = lmdb_close,
	.put = lmdb_put,
	.get = lmdb_get,
	.del = lmdb_del,
	.foreach = lmdb_foreach,
	.gc = lmdb_gc,
};
