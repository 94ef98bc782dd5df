/* policy.c - route matching, request-target normalisation and rule evaluation. */
#include "policy.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "readings.h"
#include "util.h"

/* --- request target ----------------------------------------------------------------------- */

int eg_path_normalize(const char *in, char *out, size_t outlen)
{
	if (!in)
		return -1;
	const char *p = in;
	/* Absolute form: http(s)://authority/path. */
	if (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0) {
		p = strstr(p, "://") + 3;
		p += strcspn(p, "/?#");
		if (!*p || *p == '?')
			p = "/";
	}
	struct eg_readings rd;
	if (eg_readings_compute(p, &rd) != 0)
		return -1;
	bool ambiguous = rd.ambiguous != NULL;
	eg_readings_free(&rd);
	return ambiguous ? -1 : eg_path_strict(p, out, outlen);
}

/* A host name's bytes as eg_host_normalize keeps them: ASCII letters lowercased, digits,
 * '-', '.', '_' as they are, anything else 0 (refused). One lookup per byte. */
static char host_byte[256];

__attribute__((constructor)) static void host_bytes(void)
{
	for (int c = 0; c < 256; c++) {
		bool letter = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
		host_byte[c] = letter ? (char)(c | 0x20) : (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ? (char)c : 0;
	}
}

int eg_host_normalize(const char *in, char *out, size_t outlen)
{
	if (!in || !*in)
		return -1;
	size_t n = 0;
	const char *p = in;
	if (*p == '[') { /* IPv6 literal */
		const char *close = strchr(p, ']');
		if (!close || (size_t)(close - p + 2) > outlen)
			return -1;
		for (const char *q = p; q <= close; q++) {
			if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.' && *q != '[' && *q != ']')
				return -1;
			out[n++] = (char)tolower((unsigned char)*q);
		}
		p = close + 1;
	} else {
		/* ASCII by our table, not <ctype.h>: the same in any locale */
		for (; *p && *p != ':'; p++) {
			char c = host_byte[(unsigned char)*p];
			if (!c || n + 1 >= outlen)
				return -1;
			out[n++] = c;
		}
		while (n && out[n - 1] == '.')
			n--;
	}
	if (*p == ':') {
		p++;
		if (!*p)
			return -1;
		for (; *p; p++)
			if (!isdigit((unsigned char)*p))
				return -1;
	} else if (*p) {
		return -1;
	}
	if (n == 0)
		return -1;
	out[n] = '\0';
	return 0;
}

/* --- route matching --------------------------------------------------------------------------- */

static bool host_matches(const char *pattern, const char *host)
{
	if (!pattern)
		return true;
	if (!host)
		return false;
	if (pattern[0] == '*' && pattern[1] == '.') {
		size_t hl = strlen(host), sl = strlen(pattern + 1);
		return hl > sl && strcmp(host + hl - sl, pattern + 1) == 0;
	}
	return strcmp(pattern, host) == 0;
}

/* "/api/" and "/api" both cover "/api", "/api;x", "/api/..." but not "/apix": a prefix
 * ending in '/' covers the bare name too, so "/admin" cannot fall through to a later,
 * weaker route. nocase: for folded readings (already lower-case). */
static bool path_matches(const char *prefix, const char *path, bool nocase)
{
	size_t pl = strlen(prefix);
	if (pl > 1 && prefix[pl - 1] == '/')
		pl--;
	if ((nocase ? strncasecmp(prefix, path, pl) : strncmp(prefix, path, pl)) != 0)
		return false;
	return prefix[pl - 1] == '/' || path[pl] == '\0' || path[pl] == '/' || path[pl] == ';';
}

const struct eg_route *eg_policy_match_reading(const struct eg_config *cfg, const char *host, const char *path,
					       unsigned method_bit, bool folded)
{
	for (size_t i = 0; i < cfg->n_routes; i++) {
		const struct eg_route *r = &cfg->routes[i];
		if (r->methods && !(r->methods & method_bit))
			continue;
		if (host_matches(r->host, host) && path_matches(r->path, path, folded))
			return r;
	}
	return NULL;
}

const struct eg_route *eg_policy_match(const struct eg_config *cfg, const char *host, const char *path,
				       unsigned method_bit)
{
	return eg_policy_match_reading(cfg, host, path, method_bit, false);
}

/* --- conditions --------------------------------------------------------------------------------- */

/* name's dot-separated path through nested objects (never the literal key) */
static const json_t *claim_nested(const json_t *claims, const char *name)
{
	const json_t *v;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", name);
	v = claims;
	for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
		if (!json_is_object(v))
			return NULL;
		v = json_object_get(v, tok);
	}
	return v;
}

const json_t *eg_claim_get(const json_t *claims, const char *name)
{
	if (!claims)
		return NULL;
	const json_t *v = json_object_get(claims, name);
	if (v || !strchr(name, '.'))
		return v;
	return claim_nested(claims, name);
}

static bool value_equals(const json_t *v, const char *want)
{
	if (json_is_string(v))
		return strcmp(json_string_value(v), want) == 0;
	if (json_is_integer(v)) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
		return strcmp(buf, want) == 0;
	}
	if (json_is_boolean(v))
		return strcmp(json_is_true(v) ? "true" : "false", want) == 0;
	return false;
}

/* A value matches when it (or, for arrays, any element) equals any wanted value. */
static bool value_has(const json_t *v, const struct eg_strlist *want)
{
	if (!v)
		return false;
	for (size_t i = 0; i < want->n; i++) {
		if (json_is_array(v)) {
			size_t k;
			const json_t *e;
			json_array_foreach(v, k, e)
				if (value_equals(e, want->v[i]))
					return true;
		} else if (value_equals(v, want->v[i])) {
			return true;
		}
	}
	return false;
}

/* A dotted name reads two ways when the token has both a key of that literal name and the
 * nested path ("realm_access.roles" and realm_access.roles): the most restrictive wins, so
 * an allow rule needs both to match and a deny rule either. */
static bool claim_has(const json_t *claims, const char *name, const struct eg_strlist *want, bool deny)
{
	const json_t *literal = json_object_get(claims, name);
	if (!literal || !strchr(name, '.'))
		return value_has(eg_claim_get(claims, name), want);
	const json_t *nested = claim_nested(claims, name);
	bool a = value_has(literal, want), b = nested ? value_has(nested, want) : a;
	return deny ? a || b : a && b;
}

/* A plain addr-spec: one '@', a local part without quoting, comments or controls, a
 * domain. "a@evil.test@good.test" or "\"a@evil.test\"@good.test" is read as good.test by
 * a last-'@' split and as evil.test by others (oauth2-proxy GHSA-c5c4-8r6x-56w3): an
 * address two parsers split differently is never believed. */
/* Controls, space and the specials that make an address read differently by parser. */
static bool address_char_ok(unsigned char c)
{
	switch (c) {
	case '"': case '\\': case '(': case ')': case '<': case '>': case '[': case ']': case ',': case ';': case ':':
		return false;
	default:
		return c > ' ' && c != 0x7f;
	}
}

static bool address_ok[256];

__attribute__((constructor)) static void address_table(void)
{
	for (int c = 0; c < 256; c++)
		address_ok[c] = address_char_ok((unsigned char)c);
}

static bool plain_address(const char *email)
{
	/* one pass (it runs on every verdict that reads the address): exactly one '@', not
	 * first, every byte allowed, and a domain with no empty label ("x.test." is the same
	 * mail domain as "x.test", a fully qualified name: one spelling per domain reaches the
	 * rules and the header) */
	const unsigned char *p = (const unsigned char *)email, *at = NULL;
	for (; *p; p++) {
		if (*p == '@') {
			if (at || p == (const unsigned char *)email)
				return false;
			at = p;
		} else if (!address_ok[*p]) {
			return false;
		} else if (at && *p == '.' && (p[-1] == '.' || p[-1] == '@')) {
			return false; /* ".." or a domain starting with '.' */
		}
	}
	return at && at[1] && p[-1] != '.';
}

/* rule equals email, case-insensitively; for a deny rule also with the address's trailing
 * dots dropped ("mallory@x.test." is mallory@x.test's mailbox) */
static bool same_address(const char *rule, const char *email, bool deny)
{
	if (str_ieq(rule, email))
		return true;
	size_t rl = strlen(rule), el = strlen(email);
	while (deny && el > rl && email[el - 1] == '.')
		el--;
	return deny && el == rl && strncasecmp(rule, email, rl) == 0;
}

/* The email claim when it may be believed: email_verified true (boolean or "true"),
 * or absent with trust_unverified_email set for that kind of identity (the
 * "nOAuth" class: providers where users type their own address). */
static const char *verified_email_of(const struct eg_config *cfg, const struct eg_identity *id)
{
	const json_t *claims = id->claims;
	const char *claim = cfg->oidc.email_claim ? cfg->oidc.email_claim : "email";
	const json_t *e = json_object_get(claims, claim);
	if (!json_is_string(e) || !plain_address(json_string_value(e)))
		return NULL;
	const json_t *ev = json_object_get(claims, "email_verified");
	if (json_is_true(ev) || (json_is_string(ev) && strcmp(json_string_value(ev), "true") == 0))
		return json_string_value(e);
	bool trust = id->kind == EG_ID_SESSION ? cfg->oidc.trust_unverified_email
						: cfg->jwt.trust_unverified_email;
	return !ev && trust ? json_string_value(e) : NULL;
}

/* The answer depends on the claims, the kind of identity and the config only (fixed for the
 * process): a memo keyed by the first two may give it again. */
static const char *verified_email(const struct eg_config *cfg, const struct eg_identity *id,
				  struct eg_email_memo *memo)
{
	if (memo && memo->claims && memo->claims == id->claims && memo->kind == id->kind)
		return memo->email;
	const char *email = verified_email_of(cfg, id);
	if (memo)
		*memo = (struct eg_email_memo){ id->claims, id->kind, email };
	return email;
}

const char *eg_policy_verified_email_memo(const struct eg_config *cfg, const struct eg_identity *id,
					  struct eg_email_memo *memo)
{
	return id && id->claims ? verified_email(cfg, id, memo) : NULL;
}

const char *eg_policy_verified_email(const struct eg_config *cfg, const struct eg_identity *id)
{
	return eg_policy_verified_email_memo(cfg, id, NULL);
}

static bool domain_matches(const char *rule, const char *domain)
{
	if (rule[0] == '.') { /* strict subdomains: "a.x.test" for ".x.test", never "evilx.test" */
		size_t dl = strlen(domain), rl = strlen(rule);
		return dl > rl && strcmp(domain + dl - rl, rule) == 0;
	}
	return strcmp(rule, domain) == 0;
}

/* deny: a deny rule reads the email claim even unverified (the restrictive reading). */
static bool email_conditions(const struct eg_config *cfg, const struct eg_conditions *c, const struct eg_identity *id,
			     bool deny, struct eg_email_memo *memo)
{
	const json_t *claims = id->claims;
	if (!claims || (!c->emails.n && !c->domains.n))
		return false;
	const char *email = deny ? eg_claim_str(claims, cfg->oidc.email_claim ? cfg->oidc.email_claim : "email")
				 : verified_email(cfg, id, memo);
	if (!email)
		return false;
	for (size_t i = 0; i < c->emails.n; i++)
		if (same_address(c->emails.v[i], email, deny))
			return true;
	/* only a deny rule gets here with an address that is not plain (a verified one passed
	 * plain_address): whichever domain a parser would read, the restrictive answer is that
	 * a domains rule matches. */
	if (deny && !plain_address(email))
		return c->domains.n > 0;
	const char *at = strrchr(email, '@');
	if (!at || at == email || !at[1] || strlen(at + 1) >= 256)
		return false;
	char domain[256];
	size_t n = 0;
	for (const char *p = at + 1; *p; p++)
		domain[n++] = (char)tolower((unsigned char)*p);
	domain[n] = '\0';
	for (size_t i = 0; i < c->domains.n; i++)
		if (domain_matches(c->domains.v[i], domain))
			return true;
	return false;
}

static bool cert_conditions(const struct eg_conditions *c, const struct eg_cert_identity *cert)
{
	if (!cert || !cert->verified)
		return false;
	for (size_t i = 0; i < c->cert_fingerprints.n; i++)
		if (strcmp(c->cert_fingerprints.v[i], cert->fingerprint) == 0 ||
		    strcmp(c->cert_fingerprints.v[i], cert->spki) == 0)
			return true;
	for (size_t i = 0; i < c->cert_subjects.n; i++)
		if (cert->subject && strcmp(c->cert_subjects.v[i], cert->subject) == 0)
			return true;
	for (size_t i = 0; i < c->cert_issuers.n; i++)
		if (cert->issuer && strcmp(c->cert_issuers.v[i], cert->issuer) == 0)
			return true;
	for (size_t i = 0; i < c->cert_sans.n; i++) {
		const char *want = c->cert_sans.v[i];
		for (size_t k = 0; k < cert->n_sans; k++) {
			/* DNS names compare case-insensitively; URIs and emails exactly. */
			if (strncasecmp(want, "DNS:", 4) == 0 ? str_ieq(want, cert->sans[k])
							      : strcmp(want, cert->sans[k]) == 0)
				return true;
		}
	}
	return false;
}

/* OIDC Core 5.6.2 distributed claims: the provider only says where the claim is
 * (Microsoft Entra's groups overage). Not resolved: the claim is unknown, so an allow
 * rule on it does not match and a deny rule does (fail closed). */
static bool claim_distributed(const json_t *claims, const char *name)
{
	const char *dot = strchr(name, '.');
	char top[256];
	snprintf(top, sizeof(top), "%.*s", dot ? (int)(dot - name) : (int)strlen(name), name);
	return json_object_get(json_object_get(claims, "_claim_names"), name) ||
	       json_object_get(json_object_get(claims, "_claim_names"), top);
}

static bool claim_matches(const json_t *claims, const char *name, const struct eg_strlist *want, bool deny)
{
	if (claim_distributed(claims, name))
		return deny;
	return claim_has(claims, name, want, deny);
}

static bool conditions_match(const struct eg_config *cfg, const struct eg_conditions *c, const struct eg_identity *id,
			     bool deny, struct eg_email_memo *memo)
{
	const json_t *claims = id->claims;
	if (email_conditions(cfg, c, id, deny, memo))
		return true;
	if (claims && c->groups.n &&
	    claim_matches(claims, cfg->oidc.groups_claim ? cfg->oidc.groups_claim : "groups", &c->groups, deny))
		return true;
	if (claims && c->n_claims) {
		bool all = true;
		for (size_t i = 0; i < c->n_claims && all; i++)
			all = claim_matches(claims, c->claims[i].name, &c->claims[i].values, deny);
		if (all)
			return true;
	}
	return cert_conditions(c, id->cert);
}

bool eg_policy_allows_memo(const struct eg_config *cfg, const struct eg_route *r, const struct eg_identity *id,
			   const char **why, struct eg_email_memo *memo)
{
	if (r->deny.present && conditions_match(cfg, &r->deny, id, true, memo)) {
		*why = "deny_rule";
		return false;
	}
	if (!r->allow.present || conditions_match(cfg, &r->allow, id, false, memo))
		return true;
	*why = "not_allowed";
	return false;
}

bool eg_policy_allows(const struct eg_config *cfg, const struct eg_route *r, const struct eg_identity *id,
		      const char **why)
{
	return eg_policy_allows_memo(cfg, r, id, why, NULL);
}
