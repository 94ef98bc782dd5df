/* idmemo.h - what a verdict reads from a claims set, worked out once per set.
 *
 * Why: a cached token's claims (and a cached session's) are the same immutable tree on
 * every request, and the config is fixed for the process, yet each allow looked up the
 * user, groups and email claims again, checked the address, joined the groups and
 * measured every value: about a fifth of a cached verdict's instructions. The memo keeps
 * the outcome beside a reference to the tree, per thread (no lock, no atomics on the hit). */
#ifndef EG_IDMEMO_H
#define EG_IDMEMO_H

#include <stddef.h>

#include "identity.h"

struct eg_config;

#define EG_IDMEMO_HEADERS 4

struct eg_idmemo {
	/* eg_policy_verified_email of the identity: NULL or a string of its claims */
	const char *email;
	/* the identity headers that follow from the claims alone, in the order they are sent
	 * (X-Auth-Request-User, -Email, -Groups, -Preferred-Username), values as
	 * eg_resp_header would copy them (up to a NUL, CR and LF made spaces) */
	size_t n_headers;
	const char *hname[EG_IDMEMO_HEADERS];
	size_t hname_len[EG_IDMEMO_HEADERS];
	char *hvalue[EG_IDMEMO_HEADERS];
	size_t hvalue_len[EG_IDMEMO_HEADERS];
};

/* The memo of id's claims (and kind) under cfg, computed on first sight. The thread's table
 * holds a reference to the claims, so their address cannot be another tree's while it is
 * remembered. Valid until this thread's next call; NULL when id has no claims. */
const struct eg_idmemo *eg_idmemo_get(const struct eg_config *cfg, const struct eg_identity *id);

/* A claim as an identity header carries it: a string as it is, an array's string elements
 * joined by ',' (an element with a ',' or a control left out), anything else its compact
 * JSON. NULL: no header (absent or JSON null). Free with free(). */
char *eg_claim_header_value(const json_t *v);

#endif
