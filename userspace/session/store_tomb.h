/* store_tomb.h - local revocation tombstones: a revocation the store could not take
 * (Redis down or paused, LMDB map full) is kept in an fsync'd append-only file in
 * state_dir, checked on every session load and retried against the store until it
 * lands (docs/revocation.md, "Durable revocation"). Every revocation also passes
 * through here briefly (in memory only) so that a load that read the record just
 * before the revocation cannot put it back into the session cache. */
#ifndef EG_STORE_TOMB_H
#define EG_STORE_TOMB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EG_TOMB_ID_MAX 64

struct eg_tombs;

/* One pending revocation, as the retry loop sees it. */
struct eg_tomb {
	char id[EG_TOMB_ID_MAX + 1];
	char reason[32];
	char *sub; /* may be NULL; owned by the copy (eg_tomb_clear) */
	int64_t at, exp;
};
void eg_tomb_clear(struct eg_tomb *t);

/* Opens (creating) <dir>/revoked.tombs and loads its unexpired pending entries.
 * NULL on error (err filled). */
struct eg_tombs *eg_tombs_open(const char *dir, char *err, size_t errlen);
void eg_tombs_close(struct eg_tombs *t);

/* Remembers a revocation in memory (closes the reload race; kept memory_s after it
 * is confirmed). 0 ok. */
int eg_tombs_note(struct eg_tombs *t, const char *id, const char *reason, const char *sub, int64_t at,
		  int64_t exp);
/* Makes a noted revocation durable here: appended to the file and fdatasync'd, and
 * pending until eg_tombs_confirm. 0 ok, -1 the file could not be written. */
int eg_tombs_persist(struct eg_tombs *t, const char *id);
/* The store holds the revocation now: no longer pending (logged, not fsync'd: a lost
 * confirmation only means one more idempotent retry after a crash). */
void eg_tombs_confirm(struct eg_tombs *t, const char *id);
/* Whether id is revoked here (noted recently, or pending). Cheap: a hash lookup. */
bool eg_tombs_has(struct eg_tombs *t, const char *id);
/* Copies up to max pending entries (oldest first not guaranteed). */
size_t eg_tombs_pending(struct eg_tombs *t, struct eg_tomb *out, size_t max);
size_t eg_tombs_pending_count(struct eg_tombs *t);
/* Forgets confirmed entries older than memory_s and expired ones; rewrites the file
 * when it holds mostly dead lines. Returns entries dropped. */
long eg_tombs_sweep(struct eg_tombs *t, int64_t now, int64_t memory_s);

#endif
