/* policy.h - routes and rule evaluation.
 *
 * Routes are tried in file order; the first whose host, path prefix and methods match
 * decides. Within a route, deny conditions win over allow conditions; an absent
 * `allow` admits any identity that passed the route's `auth`.
 *
 * Condition semantics (documented in docs/config.md):
 *  - allow matches when ANY listed condition matches (an email, a domain, a group,
 *    the claims object, a certificate subject/SAN/fingerprint);
 *  - `claims` is one condition: EVERY listed claim must have one of its values;
 *  - deny matches when ANY listed condition matches;
 *  - domains: "x.test" is exactly that domain, ".x.test" strict subdomains only; an
 *    email whose `email_verified` claim is false never matches email or domain rules. */
#ifndef EG_POLICY_H
#define EG_POLICY_H

#include <stdbool.h>

#include "config.h"
#include "identity.h"

/* host: lower-case, no port (NULL = unknown, matches only host-less routes);
 * path: one reading of the target (readings.h). A route path "/admin/" or "/admin"
 * covers "/admin", "/admin;x" and "/admin/..." (never "/adminx"). */
const struct eg_route *eg_policy_match(const struct eg_config *cfg, const char *host, const char *path,
				       unsigned method_bit);

/* The same for a reading marked folded: route prefixes compare case-insensitively. */
const struct eg_route *eg_policy_match_reading(const struct eg_config *cfg, const char *host, const char *path,
					       unsigned method_bit, bool folded);

/* true = allowed; otherwise *why names the reason ("deny_rule", "not_allowed"). */
bool eg_policy_allows(const struct eg_config *cfg, const struct eg_route *r, const struct eg_identity *id,
		      const char **why);

/* eg_policy_verified_email's answer for one claims object and kind of identity, kept by a
 * caller that needs it twice (a verdict: the policy, then X-Auth-Request-Email). Keyed by
 * the claims pointer: valid only while that object lives, so a verdict keeps one for its
 * own duration (its identities hold their claims until it ends) and starts it zeroed. */
struct eg_email_memo {
	const json_t *claims;
	enum eg_id_kind kind;
	const char *email;
};

/* eg_policy_allows, reading and filling memo (NULL: none). */
bool eg_policy_allows_memo(const struct eg_config *cfg, const struct eg_route *r, const struct eg_identity *id,
			   const char **why, struct eg_email_memo *memo);

/* The strict reading of a request target (readings.h), for callers that need one
 * path: query cut, an absolute URI's scheme and authority stripped, percent-decoded
 * (encoded '/' and '\\' kept as text), ;params kept as text, "//" merged, dot segments
 * removed. Rejects (-1) a target no two parsers read alike (raw '#', '\\' or controls,
 * bad escapes, encoded '/', '\\', ';' or controls, invalid or overlong UTF-8): a path
 * that could mean two things is not guessed at. out has room for strlen(in)+2. */
int eg_path_normalize(const char *in, char *out, size_t outlen);

/* Normalises a Host header value: lower-case, port and trailing dot removed. -1 when
 * it is not a plausible host (empty, spaces, '/', '@', bad brackets ...). */
int eg_host_normalize(const char *in, char *out, size_t outlen);

/* Claim lookup with dotted paths ("realm_access.roles") when no top-level claim has
 * the literal name. */
const json_t *eg_claim_get(const json_t *claims, const char *name);

/* The identity's email when it may be believed (email_verified true, or absent with
 * oidc/jwt.trust_unverified_email for that kind of identity); else NULL. */
const char *eg_policy_verified_email(const struct eg_config *cfg, const struct eg_identity *id);
/* The same through memo (NULL: none). */
const char *eg_policy_verified_email_memo(const struct eg_config *cfg, const struct eg_identity *id,
					  struct eg_email_memo *memo);

#endif
