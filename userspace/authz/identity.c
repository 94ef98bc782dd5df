/* identity.c - lifetime of an eg_identity and small claim accessors. */
#include "identity.h"

#include <stdlib.h>
#include <string.h>

void eg_cert_identity_free(struct eg_cert_identity *c)
{
	size_t i;

	if (!c)
		return;
	free(c->subject);
	free(c->issuer);
	for (i = 0; i < c->n_sans; i++)
		free(c->sans[i]);
	free(c->sans);
	free(c);
}

void eg_identity_clear(struct eg_identity *id)
{
	if (!id)
		return;
	json_decref(id->claims);
	eg_cert_identity_free(id->cert);
	memset(id, 0, sizeof(*id));
}

const char *eg_claim_str(const json_t *claims, const char *name)
{
	const json_t *v = json_object_get(claims, name);

	/* a string with an embedded NUL would compare differently in C; treat it as absent */
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}
