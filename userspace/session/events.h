/* events.h - the shared store's event stream, followed (issue 12).
 *
 * Every node appends its revocations, bans and lifted bans to one Redis Stream
 * (eg_store_publish; XADD MAXLEN ~ store.stream_maxlen) and follows it on a connection
 * of its own, in a thread of its own, with a blocking XREAD: each event is applied as
 * it arrives. The last id applied is kept in <state_dir>/stream.id, so a node that was
 * away (stopped, or cut off from Redis) catches up from there; only when the stream no
 * longer holds everything after that id (trimmed, or Redis lost its data) does the node
 * read the revocation and ban namespaces whole (a resync). */
#ifndef EG_EVENTS_H
#define EG_EVENTS_H

#include <stddef.h>

struct eg_daemon;

/* Reads <state_dir>/stream.id, or takes the stream's current end on a first start
 * (bans and deny entries are read whole at start anyway). Nothing without a shared
 * store. 0 ok. Call after the store is open, before anything may publish. */
int eg_events_init(struct eg_daemon *d, char *err, size_t errlen);
/* Starts the follower thread (after revocation, abuse and sessions are initialised). */
int eg_events_start(struct eg_daemon *d);
void eg_events_free(struct eg_daemon *d);

#endif
