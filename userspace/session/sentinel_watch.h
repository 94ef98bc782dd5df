/* sentinel_watch.h - wakes the store's prober when a sentinel announces a failover. */
#ifndef EG_SENTINEL_WATCH_H
#define EG_SENTINEL_WATCH_H
#include <stdbool.h>
#include <stddef.h>

struct eg_sentinel_watch;

struct eg_sentinel_watch *eg_sentinel_watch_new(char *const *sentinels, size_t n, int timeout_ms);
/* Waits up to ms for an event of a failover (or of the master coming back) from any
 * sentinel, subscribing first where it is not yet; returns early when *stop turns true.
 * true: such an event came. */
bool eg_sentinel_watch_wait(struct eg_sentinel_watch *w, int ms, const bool *stop);
void eg_sentinel_watch_free(struct eg_sentinel_watch *w);

#endif
