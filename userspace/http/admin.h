/* admin.h - the admin socket edgegatectl talks to.
 *
 * A unix stream socket (mode 0600, owner of the daemon). Protocol: one JSON object
 * per line in each direction: request {"cmd":"deny.add", ...args}, response
 * {"ok":true, ...} or {"ok":false,"error":"..."}. Modules register commands. */
#ifndef EG_ADMIN_H
#define EG_ADMIN_H

#include <jansson.h>

struct eg_daemon;

/* Clients served at once; one more is told "busy" and closed, never queued. */
#define EG_ADMIN_MAX_CLIENTS 16
/* A client is dropped when a request line is not complete this long after it connected
 * or after its previous answer. */
#define EG_ADMIN_IDLE_MS 5000
/* Commands run at once (of different clients): a slow one (a listing over a large store, a
 * revocation ending many flows) does not hold up another client's revoke; a client's own
 * lines still run one after another, each answered once it completed. */
#define EG_ADMIN_WORKERS 4

/* A command handler: returns a new JSON object (the response; "ok" is added when
 * absent) or NULL with *err set to a static or malloc'd-free message. */
typedef json_t *(*eg_admin_fn)(struct eg_daemon *d, const json_t *req, const char **err);

void eg_admin_register(const char *cmd, eg_admin_fn fn);
int eg_admin_start(struct eg_daemon *d, const char *path); /* background thread; 0 ok */
void eg_admin_stop(void);

/* Client side (edgegatectl): sends req, returns the response or NULL with err. */
json_t *eg_admin_call(const char *path, const json_t *req, char *err, size_t errlen);

#endif
