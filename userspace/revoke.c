/* revoke.c - PLACEHOLDER being replaced by the issue-5 implementation (flows of
 * sessions, kernel maps, socket destroy). main.c does not initialise d->revoke yet,
 * so the verdict path never calls into here. */
#include "revoke.h"

#include "daemon.h"

int eg_revoke_init(struct eg_daemon *d, char *err, size_t errlen)
{
	d->revoke = NULL;
	return 0;
}

void eg_revoke_free(struct eg_daemon *d)
{
}

void eg_flows_note(struct eg_daemon *d, const char *session_id, const struct eg_flow_tuple *t)
{
}

int eg_revoke_session_flows(struct eg_daemon *d, const char *session_id, const char *reason)
{
	return 0;
}
