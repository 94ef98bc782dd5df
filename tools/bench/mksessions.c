/* mksessions.c - creates N login sessions in edgegated's store for the benchmark,
 * through the daemon's own session module (eg_session_create: the same code an
 * OIDC callback runs after the token exchange), and prints one ticket (cookie
 * value) per line. Run it with the daemon's config before the daemon starts.
 *   mksessions CONFIG N > tickets.txt */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "daemon.h"
#include "session.h"
#include "store.h"

int main(int argc, char **argv)
{
	char err[512], ticket[EG_TICKET_MAX], sid[EG_SESSION_ID_LEN + 1];
	struct eg_daemon d = { 0 };
	long n;

	if (argc != 3 || (n = strtol(argv[2], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: mksessions CONFIG N\n");
		return 2;
	}
	d.cfg = config_load(argv[1], err, sizeof(err));
	if (!d.cfg) {
		fprintf(stderr, "mksessions: %s\n", err);
		return 1;
	}
	if (eg_sessions_init(&d, err, sizeof(err))) {
		fprintf(stderr, "mksessions: %s\n", err);
		return 1;
	}
	for (long i = 0; i < n; i++) {
		char sub[32];
		snprintf(sub, sizeof(sub), "bench-%ld", i);
		json_t *claims = json_pack("{s:s,s:s,s:b,s:[s,s],s:s}", "sub", sub, "email", "alice@example.test",
					   "email_verified", 1, "groups", "ops", "dev", "preferred_username", "alice");
		struct eg_session_new sn = { .claims = claims, .sub = sub };
		if (eg_session_create(&d, &sn, ticket, sizeof(ticket), sid)) {
			fprintf(stderr, "mksessions: eg_session_create failed at %ld\n", i);
			return 1;
		}
		json_decref(claims);
		puts(ticket);
	}
	eg_sessions_free(&d);
	if (d.store)
		eg_store_close(d.store);
	config_free(d.cfg);
	return 0;
}
