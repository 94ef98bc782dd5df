/* certcache.h - outcomes of client certificates, by the exact header nginx forwarded.
 *
 * nginx sends the same $ssl_client_escaped_cert on every request of a TLS session, and
 * parsing it (d2i_X509 with OpenSSL 3's key decoders) costs a few hundred microseconds.
 * An entry holds what mtls.c decided about one header value: the identity (allowed) or
 * the reason (refused). Looked up by a keyed SipHash of the header (random key per
 * cache); a hit is proven by a constant-time compare of the whole stored header, never
 * by the hash. An entry answers only
 *   - within its time window [from, until) (the certificate's notBefore/notAfter, capped),
 *   - while the caller's generation is the one it was stored with (mtls.c bumps it when
 *     a revocation list or CRL changes, or on SIGHUP).
 * Set-associative with per-set striped locks: no global lock on a lookup. Refusals live
 * in a table of their own, so headers that are refused (anyone able to make nginx forward
 * junk) can never evict the outcome of a valid certificate. */
#ifndef EG_CERTCACHE_H
#define EG_CERTCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "identity.h"

/* Headers longer than this are not cached (an entry keeps a copy): bounds the memory. */
#define EG_CERTCACHE_MAX_HEADER (16 * 1024)

struct eg_certcache;

/* allowed, refused: entries in each table (rounded up to a power of two times the ways). */
struct eg_certcache *eg_certcache_new(size_t allowed, size_t refused);
void eg_certcache_free(struct eg_certcache *c);

/* 1 hit, allowed: *out is a new copy of the identity (the caller frees it). -1 hit,
 * refused: *why is the stored reason. 0 miss. now: UNIX seconds. */
int eg_certcache_get(struct eg_certcache *c, const char *hdr, size_t len, uint64_t gen, int64_t now,
		     struct eg_cert_identity **out, const char **why);

/* Stores an outcome: id (copied) for an allow, or NULL and why (a string literal) for a
 * refusal. Valid for now in [from, until), and only with gen. */
void eg_certcache_put(struct eg_certcache *c, const char *hdr, size_t len, uint64_t gen, int64_t from,
		      int64_t until, const struct eg_cert_identity *id, const char *why);

void eg_certcache_clear(struct eg_certcache *c);

/* Deep copy (for tests and the cache). */
struct eg_cert_identity *eg_cert_identity_dup(const struct eg_cert_identity *c);

#endif
