/* store_tomb.c - local revocation tombstones (see store_tomb.h).
 *
 * File format: one JSON object per line, appended and fdatasync'd before a revocation
 * is acknowledged:
 *   {"id":"<64 hex>","reason":"sign_out","sub":"...","at":T,"exp":T}   pending
 *   {"confirm":"<64 hex>"}                                             the store took it
 * A torn last line (crash mid-write) does not parse and is skipped: its revocation was
 * never acknowledged. At open the file is rewritten with the pending entries only
 * (temporary file, fsync, rename, fsync of the directory), and again whenever dead
 * lines dominate. */
#include "store_tomb.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define BUCKETS 1024
#define COMPACT_MIN_DEAD 256

struct ent {
	struct ent *next;
	char id[EG_TOMB_ID_MAX + 1];
	char reason[32];
	char *sub;
	int64_t at, exp;
	int64_t touched; /* wall time noted or confirmed (memory_s counts from it) */
	bool pending;      /* persisted here, not yet confirmed in the store */
};

struct eg_tombs {
	pthread_mutex_t mu;
	struct ent *b[BUCKETS];
	char *path, *dir;
	int fd;
	size_t n_pending, dead_lines;
	bool no_compact; /* a rewrite failed (e.g. state_dir not writable after the privilege drop) */
};

void eg_tomb_clear(struct eg_tomb *t)
{
	free(t->sub);
	memset(t, 0, sizeof(*t));
}

static unsigned bucket(const char *id)
{
	uint32_t h = 2166136261u;
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % BUCKETS;
}

static struct ent *find_locked(struct eg_tombs *t, const char *id)
{
	for (struct ent *e = t->b[bucket(id)]; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static struct ent *get_locked(struct eg_tombs *t, const char *id)
{
	struct ent *e = find_locked(t, id);
	if (e)
		return e;
	e = xcalloc(1, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", id);
	unsigned b = bucket(id);
	e->next = t->b[b];
	t->b[b] = e;
	return e;
}

static char *line_of(const struct ent *e)
{
	json_t *j = json_pack("{s:s, s:s, s:I, s:I}", "id", e->id, "reason", e->reason, "at", (json_int_t)e->at,
			      "exp", (json_int_t)e->exp);
	if (j && e->sub)
		json_object_set_new(j, "sub", json_string(e->sub));
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

/* Appends one line and makes it durable. Caller holds mu. */
static int append_locked(struct eg_tombs *t, const char *line)
{
	size_t len = strlen(line), off = 0;
	char *buf = xasprintf("%s\n", line);

	len++;
	while (off < len) {
		ssize_t w = write(t->fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			free(buf);
			return -1;
		}
		off += (size_t)w;
	}
	free(buf);
	return fdatasync(t->fd) == 0 ? 0 : -1;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* Rewrites the file with the pending entries only. Caller holds mu. */
static int compact_locked(struct eg_tombs *t)
{
	char *tmp = xasprintf("%s.tmp", t->path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = -1;

	if (fd < 0)
		goto out;
	for (unsigned b = 0; b < BUCKETS; b++)
		for (struct ent *e = t->b[b]; e; e = e->next) {
			if (!e->pending)
				continue;
			char *l = line_of(e);
			bool ok = l && dprintf(fd, "%s\n", l) > 0;
			free(l);
			if (!ok)
				goto out;
		}
	if (fsync(fd) != 0 || rename(tmp, t->path) != 0 || fsync_dir(t->dir) != 0)
		goto out;
	int nfd = open(t->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (nfd < 0)
		goto out;
	close(t->fd);
	t->fd = nfd;
	t->dead_lines = 0;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

static void load_line(struct eg_tombs *t, const char *line, size_t len, int64_t now)
{
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	const char *id = json_string_value(json_object_get(j, "id"));
	const char *conf = json_string_value(json_object_get(j, "confirm"));

	if (conf && strlen(conf) <= EG_TOMB_ID_MAX) {
		/* the store holds it: nothing to keep from a previous run */
		for (struct ent **pp = &t->b[bucket(conf)]; *pp; pp = &(*pp)->next) {
			struct ent *e = *pp;
			if (strcmp(e->id, conf) != 0)
				continue;
			t->n_pending -= e->pending;
			*pp = e->next;
			free(e->sub);
			free(e);
			break;
		}
	} else if (id && strlen(id) <= EG_TOMB_ID_MAX && *id) {
		int64_t exp = (int64_t)json_integer_value(json_object_get(j, "exp"));
		if (exp > now) {
			struct ent *e = get_locked(t, id);
			const char *r = json_string_value(json_object_get(j, "reason"));
			const char *sub = json_string_value(json_object_get(j, "sub"));
			snprintf(e->reason, sizeof(e->reason), "%s", r ? r : "revoked");
			free(e->sub);
			e->sub = sub ? xstrdup(sub) : NULL;
			e->at = (int64_t)json_integer_value(json_object_get(j, "at"));
			e->exp = exp;
			if (!e->pending)
				t->n_pending++;
			e->pending = true;
			e->touched = 0;
		}
	}
	json_decref(j);
}

struct eg_tombs *eg_tombs_open(const char *dir, char *err, size_t errlen)
{
	struct eg_tombs *t = xcalloc(1, sizeof(*t));
	size_t len = 0;
	int64_t now = now_realtime_s();

	pthread_mutex_init(&t->mu, NULL);
	t->dir = xstrdup(dir);
	t->path = xasprintf("%s/revoked.tombs", dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "state_dir: cannot create %s: %s", dir, strerror(errno));
		goto fail;
	}
	t->fd = open(t->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (t->fd < 0) {
		snprintf(err, errlen, "state_dir: cannot open %s: %s", t->path, strerror(errno));
		goto fail;
	}
	char *data = read_file(t->path, 64u << 20, &len);
	for (size_t i = 0; data && i < len;) {
		char *nl = memchr(data + i, '\n', len - i);
		if (!nl)
			break; /* a torn last line: never acknowledged */
		load_line(t, data + i, (size_t)(nl - (data + i)), now);
		i = (size_t)(nl - data) + 1;
	}
	free(data);
	if (t->n_pending)
		log_warn("revocation: %zu revocation(s) recorded only locally (%s); retrying the store",
			 t->n_pending, t->path);
	if (compact_locked(t) != 0)
		log_warn("revocation: cannot rewrite %s: %s", t->path, strerror(errno));
	return t;
fail:
	free(t->dir);
	free(t->path);
	pthread_mutex_destroy(&t->mu);
	free(t);
	return NULL;
}

void eg_tombs_close(struct eg_tombs *t)
{
	if (!t)
		return;
	for (unsigned b = 0; b < BUCKETS; b++)
		for (struct ent *e = t->b[b], *n; e; e = n) {
			n = e->next;
			free(e->sub);
			free(e);
		}
	if (t->fd >= 0)
		close(t->fd);
	free(t->path);
	free(t->dir);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

int eg_tombs_note(struct eg_tombs *t, const char *id, const char *reason, const char *sub, int64_t at,
		  int64_t exp)
{
	if (!t || !id || !*id || strlen(id) > EG_TOMB_ID_MAX)
		return -1;
	pthread_mutex_lock(&t->mu);
	struct ent *e = get_locked(t, id);
	snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "revoked");
	if (sub && !e->sub)
		e->sub = xstrdup(sub);
	e->at = at;
	if (exp > e->exp)
		e->exp = exp;
	e->touched = now_realtime_s();
	pthread_mutex_unlock(&t->mu);
	return 0;
}

int eg_tombs_persist(struct eg_tombs *t, const char *id)
{
	int rc = -1;

	if (!t)
		return -1;
	pthread_mutex_lock(&t->mu);
	struct ent *e = find_locked(t, id);
	char *l = e ? line_of(e) : NULL;
	if (l && append_locked(t, l) == 0) {
		if (!e->pending)
			t->n_pending++;
		e->pending = true;
		rc = 0;
	} else if (e && !e->pending) {
		/* not durable anywhere: still refused here while this process lives */
		e->pending = true;
		t->n_pending++;
	}
	free(l);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void eg_tombs_confirm(struct eg_tombs *t, const char *id)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	struct ent *e = find_locked(t, id);
	if (e) {
		e->touched = now_realtime_s();
		if (e->pending) {
			e->pending = false;
			t->n_pending--;
			char *l = xasprintf("{\"confirm\":\"%s\"}", e->id);
			if (append_locked(t, l) == 0)
				t->dead_lines += 2;
			free(l);
		}
	}
	pthread_mutex_unlock(&t->mu);
}

bool eg_tombs_has(struct eg_tombs *t, const char *id)
{
	bool has;

	if (!t || !id)
		return false;
	pthread_mutex_lock(&t->mu);
	has = find_locked(t, id) != NULL;
	pthread_mutex_unlock(&t->mu);
	return has;
}

size_t eg_tombs_pending(struct eg_tombs *t, struct eg_tomb *out, size_t max)
{
	size_t n = 0;

	if (!t)
		return 0;
	pthread_mutex_lock(&t->mu);
	for (unsigned b = 0; b < BUCKETS && n < max; b++)
		for (struct ent *e = t->b[b]; e && n < max; e = e->next) {
			if (!e->pending)
				continue;
			struct eg_tomb *o = &out[n++];
			memset(o, 0, sizeof(*o));
			snprintf(o->id, sizeof(o->id), "%s", e->id);
			snprintf(o->reason, sizeof(o->reason), "%s", e->reason);
			o->sub = e->sub ? xstrdup(e->sub) : NULL;
			o->at = e->at;
			o->exp = e->exp;
		}
	pthread_mutex_unlock(&t->mu);
	return n;
}

size_t eg_tombs_pending_count(struct eg_tombs *t)
{
	size_t n;

	if (!t)
		return 0;
	pthread_mutex_lock(&t->mu);
	n = t->n_pending;
	pthread_mutex_unlock(&t->mu);
	return n;
}

long eg_tombs_sweep(struct eg_tombs *t, int64_t now, int64_t memory_s)
{
	long dropped = 0;

	if (!t)
		return 0;
	pthread_mutex_lock(&t->mu);
	for (unsigned b = 0; b < BUCKETS; b++)
		for (struct ent **pp = &t->b[b]; *pp;) {
			struct ent *e = *pp;
			bool gone = e->exp <= now || (!e->pending && now - e->touched >= memory_s);
			if (!gone) {
				pp = &e->next;
				continue;
			}
			if (e->pending) {
				t->n_pending--;
				t->dead_lines++;
			}
			*pp = e->next;
			free(e->sub);
			free(e);
			dropped++;
		}
	/* Appending keeps working without it: a failed rewrite is retried at the next start. */
	if (!t->no_compact && t->dead_lines >= COMPACT_MIN_DEAD && t->dead_lines > 2 * t->n_pending &&
	    compact_locked(t) != 0) {
		t->no_compact = true;
		log_warn("revocation: cannot rewrite %s (%s); it is compacted at the next start", t->path,
			 strerror(errno));
	}
	pthread_mutex_unlock(&t->mu);
	return dropped;
}
