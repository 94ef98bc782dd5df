/* json_arena.c - contiguous storage for the jansson trees of token claims (json_arena.h).
 *
 * Layout: one region of REGION_BYTES is reserved (PROT_NONE, no commit) the first time a
 * thread begins, and made accessible GROW_BYTES at a time. It is cut into 4 KiB blocks;
 * a block's first line holds its count of live allocations, the rest is handed out by a
 * bump pointer of the one thread filling it. A thread keeps its block across trees until it
 * is full. While open, the count carries a bias (OPEN_BIAS), so the filling thread counts
 * its allocations (and frees back into it) privately and frees from other threads can
 * never take it to zero; closing the block removes the bias less what was allocated. Frees
 * into other blocks are counted per thread while they hit the same block and taken off its
 * count in one step when the thread frees elsewhere or exits. Whoever takes the count to zero
 * returns the block to a mutex-guarded free list (the only lock: about one take and one
 * return per two claims sets). Past FREE_KEEP free blocks, a returned block's pages go back
 * to the kernel. If the region is full or cannot be reserved, allocations are plain malloc. */
#include "json_arena.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <sanitizer/asan_interface.h>
/* gcc says __SANITIZE_ADDRESS__, clang (the fuzz build) __has_feature */
#if defined(__SANITIZE_ADDRESS__)
#define EG_ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EG_ARENA_ASAN 1
#endif
#endif
#ifdef EG_ARENA_ASAN
#include <sanitizer/lsan_interface.h>
#endif

#define BLOCK_BYTES 4096u
#define HEAD_BYTES 64u               /* the count, alone on its cache line */
#define SMALL_MAX 1024u              /* larger allocations are plain malloc */
#define REGION_BYTES (1ull << 30)    /* 262,144 blocks reserved (address space only) */
#define GROW_BYTES (1u << 20)        /* made accessible 256 blocks at a time */
#define FREE_KEEP 1024u              /* free blocks kept committed: 4 MiB */
#define OPEN_BIAS ((size_t)1 << 48)  /* above any count of allocations in one block */
#define PREFETCH_BYTES 2048u         /* a claims set of a dozen members is ~1.9 KB */

struct block {
	_Atomic size_t live;
	struct block *next_free;
};

static _Atomic(char *) region; /* NULL until reserved */
static pthread_once_t region_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static size_t committed, carved; /* bytes of the region accessible / ever handed out as blocks */
static struct block *free_top;
static size_t n_free, n_in_use, n_taken;
static pthread_key_t thread_key; /* closes a thread's open block when it exits */
static bool thread_key_ok;

static __thread struct {
	bool on;
	struct block *cur;
	char *next, *end;
	size_t allocs; /* allocations from cur, not yet added to its count, less frees into it */
	/* Frees into one other block, not yet taken off its count: a tree's ~35 frees cost one
	 * atomic instead of 35. A block is recycled only later for it, never earlier. */
	struct block *pend;
	size_t pend_n;
	bool registered; /* thread_exit will run for this thread */
} t;

static void thread_exit(void *unused);

static void region_reserve(void)
{
	const char *off = getenv("EG_JSON_ARENA");
	void *p;

	/* EG_JSON_ARENA=0: plain malloc, e.g. to hunt a leaked tree with LeakSanitizer, which
	 * counts everything in the region as reachable */
	if (off && strcmp(off, "0") == 0)
		return;
	p = mmap(NULL, REGION_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return;
	thread_key_ok = pthread_key_create(&thread_key, thread_exit) == 0;
	/* LeakSanitizer does not scan mappings of its own accord: large values a tree holds
	 * are malloc'd and referenced only from here */
#ifdef EG_ARENA_ASAN
	__lsan_register_root_region(p, REGION_BYTES);
#endif
	atomic_store_explicit(&region, (char *)p, memory_order_release);
}

static bool in_region(const void *p)
{
	const char *r = atomic_load_explicit(&region, memory_order_relaxed);

	return r && (uintptr_t)p - (uintptr_t)r < REGION_BYTES;
}

/* A block for this thread to fill, or NULL (region full). */
static struct block *block_take(void)
{
	char *r = atomic_load_explicit(&region, memory_order_acquire);
	struct block *b = NULL;

	pthread_mutex_lock(&mu);
	if (free_top) {
		b = free_top;
		ASAN_UNPOISON_MEMORY_REGION(b, BLOCK_BYTES);
		free_top = b->next_free;
		n_free--;
	} else if (carved + BLOCK_BYTES <= REGION_BYTES) {
		if (carved + BLOCK_BYTES > committed &&
		    mprotect(r + committed, GROW_BYTES, PROT_READ | PROT_WRITE) == 0)
			committed += GROW_BYTES;
		if (carved + BLOCK_BYTES <= committed) {
			b = (struct block *)(r + carved);
			carved += BLOCK_BYTES;
		}
	}
	if (b) {
		n_in_use++;
		n_taken++;
	}
	pthread_mutex_unlock(&mu);
	if (b)
		atomic_store_explicit(&b->live, OPEN_BIAS, memory_order_relaxed);
	return b;
}

static void block_put(struct block *b)
{
	pthread_mutex_lock(&mu);
	if (n_free >= FREE_KEEP)
		madvise(b, BLOCK_BYTES, MADV_DONTNEED); /* still ours; zero pages when taken again */
	b->next_free = free_top;
	free_top = b;
	n_free++;
	n_in_use--;
	ASAN_POISON_MEMORY_REGION(b, BLOCK_BYTES);
	pthread_mutex_unlock(&mu);
}

/* Drops n from b's count; the one who reaches zero recycles it. acq_rel: every use of the
 * block's memory by other threads happens before its reuse. */
static void block_release(struct block *b, size_t n)
{
	if (atomic_fetch_sub_explicit(&b->live, n, memory_order_acq_rel) == n)
		block_put(b);
}

static void block_close(void)
{
	if (!t.cur)
		return;
	block_release(t.cur, OPEN_BIAS - t.allocs);
	t.cur = NULL;
	t.next = t.end = NULL;
	t.allocs = 0;
}

/* Other destructors (jose.c's remembered headers) may free after thread_exit ran: it
 * clears registered, so that such a free registers again (POSIX runs destructors again
 * for keys set during a round). */
static void thread_register(void)
{
	if (!t.registered && thread_key_ok)
		t.registered = pthread_setspecific(thread_key, &t) == 0;
}

static void pending_flush(void)
{
	if (t.pend)
		block_release(t.pend, t.pend_n);
	t.pend = NULL;
	t.pend_n = 0;
}

static void thread_exit(void *unused)
{
	(void)unused;
	t.registered = false;
	pending_flush();
	block_close();
}

static bool block_open(void)
{
	block_close();
	t.cur = block_take();
	if (!t.cur)
		return false;
	thread_register();
	t.next = (char *)t.cur + HEAD_BYTES;
	t.end = (char *)t.cur + BLOCK_BYTES;
	return true;
}

static void *arena_malloc(size_t n)
{
	void *p;

	if (!t.on || n > SMALL_MAX)
		return malloc(n);
	n = (n + 15) & ~(size_t)15; /* malloc's alignment */
	if ((size_t)(t.end - t.next) < n && !block_open())
		return malloc(n);
	p = t.next;
	t.next += n;
	t.allocs++;
	return p;
}

static void arena_free(void *p)
{
	struct block *b;

	if (!in_region(p)) {
		free(p);
		return;
	}
	b = (struct block *)((uintptr_t)p & ~(uintptr_t)(BLOCK_BYTES - 1));
	if (b == t.cur) {
		t.allocs--; /* everything live in the open block was allocated by this thread */
	} else if (b == t.pend) {
		t.pend_n++;
	} else {
		pending_flush();
		thread_register();
		t.pend = b;
		t.pend_n = 1;
	}
}

/* Before main: no jansson value can exist yet that these hooks would misread (and one that
 * did would be outside the region, so free()d as before). */
__attribute__((constructor)) static void arena_install(void)
{
	json_set_alloc_funcs(arena_malloc, arena_free);
}

void eg_json_arena_begin(void)
{
	pthread_once(&region_once, region_reserve);
	t.on = atomic_load_explicit(&region, memory_order_relaxed) != NULL;
}

void eg_json_arena_end(void)
{
	t.on = false;
}

void eg_json_arena_prefetch(const void *p)
{
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)63, end;

	if (!in_region(p))
		return;
	end = ((uintptr_t)p & ~(uintptr_t)(BLOCK_BYTES - 1)) + BLOCK_BYTES;
	if (end - a > PREFETCH_BYTES)
		end = a + PREFETCH_BYTES;
	for (; a < end; a += 64)
		__builtin_prefetch((const void *)a, 1, 0); /* 1: json_delete writes (refcounts) */
}

void eg_json_arena_stats(size_t *in_use, size_t *taken)
{
	pending_flush(); /* this thread's; other threads' frees may still be pending */
	pthread_mutex_lock(&mu);
	if (in_use)
		*in_use = n_in_use;
	if (taken)
		*taken = n_taken;
	pthread_mutex_unlock(&mu);
}
