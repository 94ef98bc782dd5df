/* forbidden.h - the page behind a 403. nginx never passes an auth subrequest's body on,
 * so /auth notes each 403 here (request id -> reason, route, identity), logs the id and
 * answers X-Edgegate-Request-Id and X-Edgegate-Denial-Key; the shipped snippet's
 * error_page sends the denied request to GET /forbidden with both, and the page (or,
 * for API clients, a JSON body) is rendered from the note. Proxies that hand the auth
 * answer to the client (Traefik, Caddy, Envoy) get the page as the 403 answer itself. */
#ifndef EG_FORBIDDEN_H
#define EG_FORBIDDEN_H

#include <stdbool.h>

struct eg_daemon;
struct eg_resp;
struct eg_route;
struct eg_identity;

struct eg_denial_note {
	const char *reason;
	const struct eg_route *route;  /* NULL when no route matched */
	const struct eg_identity *id;  /* who was denied; may be empty */
	const char *host, *path;       /* the original request, normalized (shown); may be NULL */
	const char *uri;               /* where to return after a new login (rd); may be NULL */
	bool json;
};

/* Creates the ring and registers GET /forbidden. 0 ok. */
int eg_forbidden_init(struct eg_daemon *d);
void eg_forbidden_free(void);

/* Records a 403 verdict, logs its request id and adds the two headers to resp. */
void eg_forbidden_note(struct eg_daemon *d, const struct eg_denial_note *n, struct eg_resp *resp);

#endif
