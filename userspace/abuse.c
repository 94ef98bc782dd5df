/* abuse.c - PLACEHOLDER being replaced by the issue-5 implementation (failure
 * counting, bans, verdict rate limits). main.c does not initialise d->abuse yet, so
 * the verdict path never calls into here. */
#include "abuse.h"

#include "daemon.h"

int eg_abuse_init(struct eg_daemon *d, char *err, size_t errlen)
{
	d->abuse = NULL;
	return 0;
}

void eg_abuse_free(struct eg_daemon *d)
{
}

int eg_abuse_check(struct eg_daemon *d, const uint8_t src[16], const char **reason)
{
	return 0;
}

void eg_abuse_note(struct eg_daemon *d, const uint8_t src[16], int status, const char *reason)
{
}
