/* verdict.h - GET /auth, the nginx auth_request endpoint. */
#ifndef EG_VERDICT_H
#define EG_VERDICT_H

struct eg_daemon;
struct eg_req;
struct eg_resp;

/* Answers 200 (with identity headers), 401 (with Location to the login start when
 * the route can log in) or 403. Registered for /auth by main.c. */
void eg_verdict(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp);

/* Prepares what eg_verdict needs (token cache, metric help texts). 0 ok. */
int eg_verdict_init(struct eg_daemon *d);

#endif
