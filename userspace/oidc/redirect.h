/* redirect.h - the one validator for every redirect target (rd=, post-logout).
 *
 * Accepted: a relative path starting with exactly one "/", or an absolute http(s) URL
 * whose host is on the allowlist: cfg->redirect_domains ("x.test" exact, ".x.test"
 * = x.test and its subdomains), plus the hosts of public_url and oidc.redirect_url.
 * Rejected: "//" and "/\" (also with whitespace or dot segments between), any
 * backslash, whitespace or control character raw or percent-encoded (also double
 * encoded), encoded "/" "\" "%" before the query, other schemes (javascript:, data:
 * ...), userinfo ("@") in the authority, look-alike and suffix domains, non-ASCII
 * hosts (IDN must be written as the allowlisted punycode), trailing-dot hosts. */
#ifndef EG_REDIRECT_H
#define EG_REDIRECT_H

#include <stdbool.h>
#include <stddef.h>

struct eg_config;

#define EG_REDIRECT_MAX 4096

/* Pure check against an explicit allowlist (entries may carry ":port"). */
bool eg_redirect_allowed(const char *target, const char *const *domains, size_t n);

/* Check against the configuration's allowlist. */
bool eg_redirect_ok(const struct eg_config *cfg, const char *target);

/* Lower-cased host (no port) of an absolute http(s) URL into buf; -1 if none. */
int eg_url_host(const char *url, char *buf, size_t len);

#endif
