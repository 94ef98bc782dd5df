/* denials.h - a bounded ring of recent 403 verdicts, keyed by request id, so the page
 * nginx shows for a 403 can say why. Entries expire after a short TTL and the oldest is
 * overwritten when the ring is full; a lookup needs the denial's key as well as its id
 * (the id is shown and logged, the key only travels between edgegated and nginx). */
#ifndef EG_DENIALS_H
#define EG_DENIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "pages.h"

struct eg_denial {
	char id[EG_REQUEST_ID_LEN + 1];
	char key[EG_REQUEST_ID_LEN + 1];
	int64_t at;          /* UNIX time */
	bool json;           /* the client wanted JSON (API, XHR, bearer) */
	enum eg_id_kind kind;
	char session_id[80]; /* for EG_ID_SESSION: the page shows identity only to this session */
	char reason[48];
	char route[256];     /* the route's path prefix */
	char rule[256];      /* what the route's allow asks for, when it may say so (explain) */
	char target[512];    /* host and path asked for */
	char rd[2048];       /* where to return after a new login; "" if too long */
	char user[128];
	char email[256];
	char groups[256];
};

struct eg_denials;

struct eg_denials *eg_denials_new(size_t capacity, int64_t ttl_s);
void eg_denials_free(struct eg_denials *r);
/* Copies e in, replacing the oldest entry when full. */
void eg_denials_put(struct eg_denials *r, const struct eg_denial *e);
/* true with *out filled when id names a live entry whose key equals key (constant time). */
bool eg_denials_get(struct eg_denials *r, const char *id, const char *key, int64_t now, struct eg_denial *out);

/* Copies src into dst (size n), cut at a UTF-8 character boundary; NULL gives "".
 * Returns false when src did not fit. */
bool eg_denial_copy(char *dst, size_t n, const char *src);

#endif
