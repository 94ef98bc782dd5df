/* smuggle.h - identity headers a client tries to slip past the proxy under another
 * spelling (oauth2-proxy GHSA-vjrc-mh2v-45x6 / CVE-2025-64484). */
#ifndef EG_SMUGGLE_H
#define EG_SMUGGLE_H

#include <stdbool.h>
#include <stddef.h>

struct eg_config;
struct eg_req;

/* True when name contains '_' and, read with '_' as '-' and case folded, is a header
 * edgegated answers with (X-Auth-Request-*, any route's `headers` mapping). */
bool eg_identity_header_variant(const struct eg_config *cfg, const char *name);
/* The same for a name whose length is known (len bytes, NUL-terminated) */
bool eg_identity_header_variant_n(const struct eg_config *cfg, const char *name, size_t len);

/* Calls fn with the value of every request header named one of names[0..n) in any
 * spelling ('_' read as '-', any case); counts[i] gets how many were names[i]. One pass
 * over the headers for all the names. */
void eg_req_header_spellings(const struct eg_req *r, const char *const *names, size_t n, size_t *counts,
			     void (*fn)(const char *value, void *arg), void *arg);

/* name, with '_' read as '-' and case folded, is want */
bool eg_header_name_is(const char *name, const char *want);
/* The same for a name of len bytes (its strlen) and a want of want_len. */
bool eg_header_name_is_n(const char *name, size_t len, const char *want, size_t want_len);

/* Calls fn for every request header, in order, with the name's length: one pass for
 * several names. */
void eg_req_headers_each(const struct eg_req *r, void (*fn)(const char *key, size_t key_len, const char *value, void *arg),
			 void *arg);

#endif
