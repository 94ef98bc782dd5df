/* json_arena.h - contiguous storage for the jansson trees of token claims.
 *
 * Why: the verdict cache keeps each verified token's claims (about 35 small jansson
 * allocations) and frees the oldest set when it inserts a new one. Under load that set was
 * last touched a thousand verdicts earlier, so freeing it and reusing its chunks chased cold
 * pointers through glibc's bins: perf put ~8 µs of each uncached verdict in that tree's
 * build and free (libc and jansson) against ~1 µs when the same parse is freed at once.
 * Trees built between eg_json_arena_begin and _end are bump-allocated in 4 KiB blocks of one
 * reserved region, so one tree lies in one or two blocks; a free inside the region only
 * decrements its block's count, and the block is recycled when the count reaches zero.
 *
 * jansson's allocator hooks are process-wide (json_set_alloc_funcs): they are installed
 * before main, and every allocation made outside begin/_end, or too large for a block, is
 * plain malloc, so memory jansson hands its callers (json_dumps) is still free()d as before.
 * Which kind a pointer is follows from its address, not from any header.
 *
 * LeakSanitizer scans the region as a root (large values a tree holds are malloc'd and
 * referenced only from there), so a leaked tree is invisible to it: EG_JSON_ARENA=0 in the
 * environment turns the arena off (plain malloc throughout) for a leak hunt. A block on the
 * free list is poisoned for AddressSanitizer, so use after the last free is still caught. */
#ifndef EG_JSON_ARENA_H
#define EG_JSON_ARENA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Until eg_json_arena_end, this thread's small jansson allocations come from its current
 * block (a no-op when the region could not be reserved). Not nested. */
void eg_json_arena_begin(void);
void eg_json_arena_end(void);

/* Starts loading into the CPU's cache the arena memory from p on (at most 2 KiB, within
 * its block): where a tree that is about to be freed lies when it was built in one go.
 * Nothing for memory outside the region. */
void eg_json_arena_prefetch(const void *p);

/* For tests and benchmarks: blocks in use (holding at least one live allocation or being
 * filled by a thread) and blocks taken since start. */
void eg_json_arena_stats(size_t *in_use, size_t *taken);

#ifdef __cplusplus
}
#endif

#endif
