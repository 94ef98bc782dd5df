/* idmemo.c - per-thread memo of what a verdict reads from a claims set (idmemo.h).
 *
 * A direct-mapped table per thread, indexed by the claims' address and the identity's
 * kind. A slot holds a reference to its claims (json_incref), so while the slot keeps
 * them no other tree can be allocated at that address: a hit on the address is a hit on
 * the same immutable tree. A slot is replaced when another tree maps to it; the table and
 * its references go when the thread exits. */
#include "idmemo.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "policy.h"
#include "util.h"

#define SLOTS 64 /* power of two */

struct slot {
	json_t *claims; /* held reference; NULL: empty */
	enum eg_id_kind kind;
	const struct eg_config *cfg;
	struct eg_idmemo m;
};

static pthread_key_t table_key;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static __thread struct slot *table;

static void slot_empty(struct slot *s)
{
	for (size_t i = 0; i < s->m.n_headers; i++)
		free(s->m.hvalue[i]);
	json_decref(s->claims);
	memset(s, 0, sizeof(*s));
}

static void table_free(void *p)
{
	struct slot *t = p;
	for (size_t i = 0; i < SLOTS; i++)
		slot_empty(&t[i]);
	free(t);
}

static void table_key_init(void)
{
	if (pthread_key_create(&table_key, table_free) != 0)
		abort();
}

/* An element that would read as several (a ',') or split the header (controls) once joined:
 * a group named "ops,admins" must not hand the upstream an "admins" group. Policy still
 * sees the claim as it is; only the header leaves such an element out. */
static bool list_element_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p == ',' || *p < ' ' || *p == 0x7f)
			return false;
	return true;
}

char *eg_claim_header_value(const json_t *v)
{
	if (!v || json_is_null(v))
		return NULL;
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (!json_is_array(v))
		return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	/* arrays of strings become comma-separated lists, like X-Auth-Request-Groups */
	size_t cap = 1, i, len = 0;
	const json_t *e;
	json_array_foreach(v, i, e)
		cap += (json_is_string(e) ? json_string_length(e) : 32) + 1;
	char *s = xmalloc(cap);
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || !list_element_ok(json_string_value(e)))
			continue;
		/* up to a NUL, as strcat read it (list_element_ok refuses none) */
		size_t n = strlen(json_string_value(e));
		if (len)
			s[len++] = ',';
		memcpy(s + len, json_string_value(e), n);
		len += n;
	}
	s[len] = '\0';
	return s;
}

/* value (owned) as eg_resp_header copies it: up to a NUL, CR and LF made spaces */
static void add(struct eg_idmemo *m, const char *name, char *value)
{
	if (!value)
		return;
	size_t n = strlen(value);
	for (char *p = value; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	m->hname[m->n_headers] = name;
	m->hname_len[m->n_headers] = strlen(name);
	m->hvalue[m->n_headers] = value;
	m->hvalue_len[m->n_headers++] = n;
}

/* what identity_headers (verdict.c) sends for the claims, before any certificate's and the
 * route's own headers */
static void compute(const struct eg_config *cfg, const struct eg_identity *id, struct eg_idmemo *m)
{
	const json_t *c = id->claims;
	m->email = eg_policy_verified_email(cfg, id);
	add(m, "X-Auth-Request-User", eg_claim_header_value(eg_claim_get(c, cfg->oidc.user_claim ? cfg->oidc.user_claim : "sub")));
	add(m, "X-Auth-Request-Email", m->email ? xstrdup(m->email) : NULL);
	add(m, "X-Auth-Request-Groups",
	    eg_claim_header_value(eg_claim_get(c, cfg->oidc.groups_claim ? cfg->oidc.groups_claim : "groups")));
	add(m, "X-Auth-Request-Preferred-Username", eg_claim_header_value(eg_claim_get(c, "preferred_username")));
}

const struct eg_idmemo *eg_idmemo_get(const struct eg_config *cfg, const struct eg_identity *id)
{
	if (!id || !id->claims)
		return NULL;
	if (!table) {
		pthread_once(&table_once, table_key_init);
		table = xcalloc(SLOTS, sizeof(*table));
		pthread_setspecific(table_key, table);
	}
	uintptr_t a = (uintptr_t)id->claims;
	struct slot *s = &table[((a >> 4) ^ (a >> 12) ^ (uintptr_t)id->kind) & (SLOTS - 1)];
	if (s->claims == id->claims && s->kind == id->kind && s->cfg == cfg)
		return &s->m;
	slot_empty(s);
	s->claims = json_incref(id->claims);
	s->kind = id->kind;
	s->cfg = cfg;
	compute(cfg, id, &s->m);
	return &s->m;
}
