/* denials.c - the ring of recent denials (see denials.h). One mutex: writers are 403
 * verdicts, readers the 403 page; both are rare next to allows. */
#include "denials.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct eg_denials {
	pthread_mutex_t mu;
	int64_t ttl_s;
	size_t cap, next;
	struct eg_denial *e;
};

struct eg_denials *eg_denials_new(size_t capacity, int64_t ttl_s)
{
	struct eg_denials *r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	r->cap = capacity ? capacity : 1;
	r->ttl_s = ttl_s;
	r->e = xcalloc(r->cap, sizeof(*r->e));
	return r;
}

void eg_denials_free(struct eg_denials *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->mu);
	free(r->e);
	free(r);
}

void eg_denials_put(struct eg_denials *r, const struct eg_denial *e)
{
	pthread_mutex_lock(&r->mu);
	r->e[r->next] = *e;
	r->next = (r->next + 1) % r->cap;
	pthread_mutex_unlock(&r->mu);
}

bool eg_denials_get(struct eg_denials *r, const char *id, const char *key, int64_t now, struct eg_denial *out)
{
	if (!eg_request_id_valid(id) || !eg_request_id_valid(key))
		return false;
	bool found = false;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->cap && !found; i++) {
		const struct eg_denial *e = &r->e[i];
		if (e->id[0] && strcmp(e->id, id) == 0 && e->at <= now && now - e->at <= r->ttl_s &&
		    ct_equal(e->key, key, EG_REQUEST_ID_LEN)) {
			*out = *e;
			found = true;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return found;
}

bool eg_denial_copy(char *dst, size_t n, const char *src)
{
	size_t len = src ? strlen(src) : 0;
	bool fits = len < n;
	if (!fits) {
		len = n - 1;
		while (len && ((unsigned char)src[len] & 0xC0) == 0x80)
			len--; /* do not cut a multi-byte character in half */
	}
	if (len)
		memcpy(dst, src, len);
	dst[len] = '\0';
	return fits;
}
