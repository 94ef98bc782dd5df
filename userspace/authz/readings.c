/* readings.c - the readings of a request target an upstream may take (see readings.h). */
#include "readings.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ufold.h"
#include "util.h"

/* Independent transforms; a plan is a set of them, always applied in this order. */
enum {
	T_FRAGMENT = 1u << 0,   /* a raw '#' starts a fragment */
	T_DECODE2 = 1u << 1,    /* one more percent-decoding */
	T_FOLD = 1u << 2,       /* case and compatibility folding, overlong UTF-8 decoded */
	T_SEPS = 1u << 3,       /* '\', %2F and %5C are separators */
	T_AUTHORITY = 1u << 4,  /* a leading "//x" is an authority, dropped */
	T_PARAMS = 1u << 5,     /* ";params" stripped per segment (before dot segments, like Tomcat) */
	T_WINDOWS = 1u << 6,    /* trailing dots/spaces and "::$DATA" trimmed per segment */
	T_KEEP_EMPTY = 1u << 7, /* "//" not merged (RFC 3986 proper) */
	T_SUFFIX = 1u << 8,     /* the last segment's ".ext" dropped (Spring suffix pattern match) */
	T_REPARSE = 1u << 9,    /* decoded, then parsed again: a decoded '?' or '#' ends the path */
	T_RAW = 1u << 10,       /* not decoded at all: "%2e%2e" is no dot segment (Express's req.path) */
	T_SLASH = 1u << 11,     /* %2F is a separator, %5C a plain '\' (POSIX), unless T_SEPS */
	T_BSLASH = 1u << 12,    /* a raw '\' is a separator, %5C is not (WHATWG URL: Node's new URL()) */
};

#define T_LOOSE (T_DECODE2 | T_FOLD | T_SEPS | T_PARAMS | T_WINDOWS | T_SUFFIX)

/* Plan 0 is the strict reading. Single transforms show one parser's habit; the loose
 * plans compose them so that a target mixing two tricks is still read the loose way. */
static const unsigned plans[] = {
	0,
	T_KEEP_EMPTY,
	T_PARAMS,
	T_SEPS,
	T_SEPS | T_DECODE2,
	T_FOLD,
	T_SEPS | T_WINDOWS | T_FOLD,
	T_SEPS | T_AUTHORITY,
	T_FRAGMENT,
	T_FRAGMENT | T_LOOSE,
	T_LOOSE,
	T_LOOSE | T_KEEP_EMPTY,
	T_LOOSE | T_AUTHORITY,
	T_SEPS | T_REPARSE,
	T_LOOSE | T_REPARSE,
	/* Found by tests/integration/boundary_property.t.mjs: loose readings in which an
	 * encoded '/' or '\' stays one segment's text ("/public%5Cx/..;/ADMIN" is "/admin"
	 * to a folding, ;param-stripping parser), the same with a decoded '?' ending the path
	 * ("/public%2Fx//../adm%c1%a9n%3f"), and a leading "//x" read after a reparse. */
	T_FOLD | T_PARAMS | T_WINDOWS | T_SUFFIX,
	T_FOLD | T_PARAMS | T_WINDOWS | T_SUFFIX | T_REPARSE,
	T_LOOSE | T_AUTHORITY | T_REPARSE,
	/* Routers that match the undecoded path: "/board/%2e%2e/x" is under /board/ there
	 * while every decoding reads "/x" (boundary_property.t.mjs). */
	T_RAW,
	T_RAW | T_SEPS | T_FOLD | T_PARAMS | T_WINDOWS | T_SUFFIX,
};
_Static_assert(sizeof(plans) / sizeof(plans[0]) <= EG_READINGS_MAX, "too many reading plans");

/* A reading may grow (folding expands some characters): bounded. */
#define READING_MAX (4 * EG_TARGET_MAX)

static int pct_value(const char *p, size_t left)
{
	if (left < 3 || p[0] != '%')
		return -1;
	int h = hex_digit((unsigned char)p[1]), l = h < 0 ? -1 : hex_digit((unsigned char)p[2]);
	return l < 0 ? -1 : h * 16 + l;
}

static bool is_control(int c)
{
	return c < 0x20 || c == 0x7f;
}

/* How a decoding pass treats %2F and %5C. */
enum { SEPS_KEEP, SEPS_BOTH, SEPS_SLASH };

/* One percent-decoding pass into out (room for n+1). Broken escapes stay as text;
 * encoded control bytes stay encoded (no reading ever holds a NUL); encoded '/' and
 * '\' become separators when seps (SEPS_BOTH), else stay encoded text (upper-case hex),
 * but for SEPS_SLASH: %2F a separator, %5C kept (one segment's text). */
static size_t decode_pass(const char *in, size_t n, char *out, int seps)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		int v = pct_value(in + i, n - i);
		if (v < 0) {
			out[o++] = in[i++];
			continue;
		}
		if (is_control(v) || ((v == '/' || v == '\\') && seps == SEPS_KEEP) || (v == '\\' && seps == SEPS_SLASH)) {
			static const char hex[] = "0123456789ABCDEF";
			out[o++] = '%';
			out[o++] = hex[v >> 4];
			out[o++] = hex[v & 15];
		} else {
			out[o++] = (char)(v == '\\' ? '/' : v);
		}
		i += 3;
	}
	out[o] = '\0';
	return o;
}

/* URL syntax a compatibility character may fold into. */
static size_t syntax_bytes(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += s[i] && strchr("/\\.;%?#:", s[i]) != NULL;
	return k;
}

struct memo;
static const char *fold_once(struct memo *m, const char *s, size_t n, size_t *outn);
static const char *decoded(struct memo *m, const char *path, size_t n, bool cut, int seps, bool twice,
			   size_t *outn);

/* Non-ASCII that NFKC folds into URL syntax ("／" U+FF0F is '/', "‥" U+2025 is ".."): a
 * folding upstream splits or climbs where the others read one name. */
static bool compat_syntax(struct memo *m, const char *s, size_t n)
{
	bool ascii = true;
	for (size_t i = 0; i < n && ascii; i++)
		ascii = (unsigned char)s[i] < 0x80;
	if (ascii)
		return false;
	size_t fn = 0;
	const char *f = fold_once(m, s, n, &fn);
	return !f || syntax_bytes(f, fn) != syntax_bytes(s, n);
}

/* Why the raw path no two parsers read alike, or NULL. */
static const char *ambiguity(struct memo *m, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)p[i];
		if (is_control(c) || c == ' ')
			return "control_char";
		if (c == '#')
			return "raw_fragment";
		if (c == '\\')
			return "raw_backslash";
		if (c != '%')
			continue;
		int v = pct_value(p + i, n - i);
		if (v < 0)
			return "bad_escape";
		if (is_control(v))
			return "encoded_control";
		if (v == '/' || v == '\\' || v == ';')
			return "encoded_separator";
	}
	/* Decoded once and twice, the bytes must still be UTF-8 without controls (the
	 * decodings and folds are those the plans use: remembered in m). */
	size_t n1 = 0, n2 = 0;
	const char *once = decoded(m, p, n, false, SEPS_BOTH, false, &n1);
	const char *twice = decoded(m, p, n, false, SEPS_BOTH, true, &n2);
	const char *why = NULL;
	if (!eg_utf8_valid(once, n1) || !eg_utf8_valid(twice, n2))
		why = "bad_utf8";
	else if (compat_syntax(m, once, n1) || compat_syntax(m, twice, n2))
		why = "compat_syntax"; /* found by boundary_property.t.mjs: "/public／x/%2E%2E/admin." */
	/* "also after one more decoding" (docs/config.md): %2500 and %252F alike */
	for (size_t i = 0; !why && i + 2 < n1; i++) {
		int v = pct_value(once + i, n1 - i);
		if (v >= 0 && is_control(v))
			why = "encoded_control";
		else if (v == '/' || v == '\\' || v == ';')
			why = "encoded_separator";
	}
	return why;
}

static bool all_dots(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '.')
			return false;
	return n > 0;
}

/* Windows: "::$DATA" and trailing spaces go; a segment of dots only is a dot segment
 * ("..." climbs like ".."); otherwise trailing dots and spaces go too. */
static size_t windows_trim(const char *s, size_t n, bool *dots, bool *dotdot)
{
	for (;;) {
		if (n >= 7 && s[n - 7] == ':' && strncasecmp(s + n - 7, "::$DATA", 7) == 0)
			n -= 7;
		else if (n > 0 && s[n - 1] == ' ')
			n--;
		else
			break;
	}
	if (all_dots(s, n)) {
		*dots = n == 1;
		*dotdot = n >= 2;
		return n;
	}
	while (n > 0 && (s[n - 1] == '.' || s[n - 1] == ' '))
		n--;
	return n;
}

struct seg {
	const char *p;
	size_t n;
};

/* One segment of a prepared string as each composition of T_PARAMS and T_WINDOWS reads
 * it: its length and whether it is a dot segment. Computed once per prepared string, then
 * read by every composition of the resolve transforms. */
struct piece {
	size_t n;
	bool dot, dotdot;
};

struct split_seg {
	const char *p;
	struct piece v[4]; /* [T_PARAMS ? 1 : 0 | T_WINDOWS ? 2 : 0] */
};

/* Reused buffers of one computation: resolving an ambiguous target hundreds of ways
 * allocates nothing per plan, only each distinct reading once (add). */
struct scratch {
	struct seg *st;
	struct split_seg *segs;
	size_t nsegs;
	const char *split_s; /* what segs are the segments of (split_n bytes) */
	size_t split_n;
	bool split_windows; /* segs have their T_WINDOWS readings (v[2], v[3]) */
	char *out;
	size_t cap; /* st and segs have cap + 1 entries, out cap + 2 bytes */
};

static void scratch_reserve(struct scratch *sc, size_t n)
{
	if (n <= sc->cap && sc->out)
		return;
	free(sc->st);
	free(sc->segs);
	free(sc->out);
	sc->cap = n;
	sc->st = xmalloc(sizeof(*sc->st) * (n + 1));
	sc->segs = xmalloc(sizeof(*sc->segs) * (n + 1));
	sc->out = xmalloc(n + 2);
}

static void scratch_free(struct scratch *sc)
{
	free(sc->st);
	free(sc->segs);
	free(sc->out);
}

static struct piece piece_of(const char *p, size_t sl, bool windows)
{
	struct piece pc = { sl, sl == 1 && p[0] == '.', sl == 2 && p[0] == '.' && p[1] == '.' };
	if (windows && !pc.dot && !pc.dotdot)
		pc.n = windows_trim(p, sl, &pc.dot, &pc.dotdot);
	return pc;
}

/* The segments of s (which starts with '/') into sc->segs, unless they are there: the
 * plans resolve the same few prepared strings (memo) several ways. */
static void split(struct scratch *sc, const char *s, size_t n, bool windows)
{
	if (sc->split_s == s && sc->split_n == n && (sc->split_windows || !windows))
		return;
	scratch_reserve(sc, n);
	sc->split_s = s, sc->split_n = n, sc->split_windows = windows;
	const char *p = s + 1, *end = s + n;
	size_t k = 0;
	for (;;) {
		const char *q = memchr(p, '/', (size_t)(end - p));
		size_t sl = (size_t)((q ? q : end) - p), pl = sl;
		const char *semi = memchr(p, ';', sl);
		if (semi)
			pl = (size_t)(semi - p);
		struct split_seg *g = &sc->segs[k++];
		g->p = p;
		g->v[0] = piece_of(p, sl, false);
		g->v[1] = semi ? piece_of(p, pl, false) : g->v[0];
		if (windows) {
			g->v[2] = piece_of(p, sl, true);
			g->v[3] = semi ? piece_of(p, pl, true) : g->v[2];
		}
		if (!q)
			break;
		p = q + 1;
	}
	sc->nsegs = k;
}

/* Dot-segment removal over the segments split() found, with the per-segment transforms
 * of the plan, into sc->out (valid until the next call). NULL when the plan does not
 * apply. */
static const char *resolve_split(struct scratch *sc, const char *s, size_t n, unsigned plan, size_t *outn)
{
	size_t first = 0;
	if (plan & T_AUTHORITY) {
		/* "//host/rest": segment 0 is the empty one before "host", 1 is "host" */
		if (n < 2 || s[1] != '/')
			return NULL;
		if (sc->nsegs <= 2) {
			memcpy(sc->out, "/", 2);
			*outn = 1;
			return sc->out;
		}
		first = 2;
	}
	unsigned variant = (plan & T_PARAMS ? 1u : 0u) | (plan & T_WINDOWS ? 2u : 0u);
	struct seg *st = sc->st;
	size_t depth = 0;
	bool trailing = false;
	for (size_t i = first; i < sc->nsegs; i++) {
		const struct piece *pc = &sc->segs[i].v[variant];
		bool last = i + 1 == sc->nsegs;
		if (pc->dot || pc->dotdot) {
			if (pc->dotdot && depth)
				depth--;
			trailing = true;
		} else if (pc->n == 0) {
			if (last)
				trailing = true;
			else if (plan & T_KEEP_EMPTY)
				st[depth++] = (struct seg){ sc->segs[i].p, 0 }, trailing = false;
		} else {
			st[depth++] = (struct seg){ sc->segs[i].p, pc->n };
			trailing = false;
		}
	}
	if ((plan & T_SUFFIX) && depth && !trailing) {
		const char *dot = st[depth - 1].n > 1 ? memchr(st[depth - 1].p + 1, '.', st[depth - 1].n - 1) : NULL;
		/* never a dot segment made after dot segments were removed ("..x" stays) */
		if (dot && !all_dots(st[depth - 1].p, (size_t)(dot - st[depth - 1].p)))
			st[depth - 1].n = (size_t)(dot - st[depth - 1].p);
	}
	char *out = sc->out, *o = out;
	for (size_t i = 0; i < depth; i++) {
		*o++ = '/';
		memcpy(o, st[i].p, st[i].n);
		o += st[i].n;
	}
	if (depth == 0 || trailing)
		*o++ = '/';
	*o = '\0';
	*outn = (size_t)(o - out);
	return out;
}

/* One plan's dot-segment removal of s (see resolve_split). */
static const char *resolve(struct scratch *sc, const char *s, size_t n, unsigned plan, size_t *outn)
{
	split(sc, s, n, plan & T_WINDOWS);
	return resolve_split(sc, s, n, plan, outn);
}

/* One bump allocator per computation: the decodings, prepared strings and folds of an
 * ambiguous target (a hundred or so) go into a few blocks, freed at once. */
#define ARENA_BLOCK 16384
struct arena_block {
	struct arena_block *next;
	size_t used, cap;
	char data[];
};

static char *arena_copy(struct arena_block **a, const char *s, size_t n)
{
	struct arena_block *b = *a;
	if (!b || b->cap - b->used < n + 1) {
		size_t cap = n + 1 > ARENA_BLOCK ? n + 1 : ARENA_BLOCK;
		b = xmalloc(sizeof(*b) + cap);
		b->next = *a, b->used = 0, b->cap = cap;
		*a = b;
	}
	char *p = b->data + b->used;
	b->used += n + 1;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static void arena_free(struct arena_block *a)
{
	while (a) {
		struct arena_block *next = a->next;
		free(a);
		a = next;
	}
}

/* Folding is the costly step and several plans fold the same decoded bytes: the folds
 * of one target are remembered for its other plans (and for ambiguity()). */
struct fold_memo {
	size_t n;
	struct {
		const char *in, *out;
		size_t inn, outn;
	} e[32];
};

/* The target decoded once or twice, whole or cut at a raw '#', per separator mode: an
 * ambiguous target is prepared a hundred ways from these few decodings. */
struct decode_memo {
	const char *s[2][3][2]; /* [cut at '#'][SEPS_*][decoded twice] */
	size_t n[2][3][2];
};

struct memo {
	struct fold_memo fold;
	struct decode_memo dec;
	struct arena_block *arena; /* everything the memo and prepare() hand out */
};

/* eg_unicode_fold of s[0..n), remembered; NULL as there. Valid until the memo is freed. */
static const char *fold_once(struct memo *m, const char *s, size_t n, size_t *outn)
{
	struct fold_memo *f = &m->fold;
	for (size_t i = 0; i < f->n; i++) {
		if (f->e[i].inn == n && memcmp(f->e[i].in, s, n) == 0) {
			*outn = f->e[i].outn;
			return f->e[i].out;
		}
	}
	size_t fn = 0;
	char *r = eg_unicode_fold(s, n, READING_MAX, &fn);
	const char *out = r ? arena_copy(&m->arena, r, fn) : NULL;
	free(r);
	if (f->n < sizeof(f->e) / sizeof(f->e[0])) {
		f->e[f->n].in = arena_copy(&m->arena, s, n), f->e[f->n].inn = n;
		f->e[f->n].out = out, f->e[f->n].outn = fn;
		f->n++;
	}
	*outn = fn;
	return out;
}

static const char *decoded(struct memo *m, const char *path, size_t n, bool cut, int seps, bool twice,
			   size_t *outn)
{
	const char **s = &m->dec.s[cut][seps][twice];
	if (!*s) {
		size_t in_n = n;
		const char *in = twice ? decoded(m, path, n, cut, seps, false, &in_n) : path;
		char *d = xmalloc(in_n + 1);
		/* the second pass reads separators as the first did: "%252F" stays text where
		 * "%2F" does (the fixed plans decode twice with T_SEPS only) */
		size_t dn = decode_pass(in, in_n, d, seps);
		*s = arena_copy(&m->arena, d, dn);
		m->dec.n[cut][seps][twice] = dn;
		free(d);
	}
	*outn = m->dec.n[cut][seps][twice];
	return *s;
}

static void memo_free(struct memo *m)
{
	arena_free(m->arena);
}

/* The bytes a plan resolves: the target decoded, cut, folded as the plan says (its
 * per-segment transforms are resolve's), n bytes at *outn (not NUL-terminated). NULL
 * when the plan does not apply. Valid until the memo is freed. */
static const char *prepare(const char *path, size_t n, unsigned plan, struct memo *memo, size_t *outn)
{
	bool cut = plan & T_FRAGMENT;
	if (cut) {
		const char *h = memchr(path, '#', n);
		if (!h)
			return NULL; /* same as the plan without it */
		n = (size_t)(h - path);
	}
	size_t an = n;
	int seps = plan & T_SEPS ? SEPS_BOTH : plan & T_SLASH ? SEPS_SLASH : SEPS_KEEP;
	const char *a = plan & T_RAW ? path : decoded(memo, path, n, cut, seps, plan & T_DECODE2, &an);
	if (plan & T_REPARSE) {
		size_t end = 0;
		while (end < an && a[end] != '?' && a[end] != '#')
			end++;
		if (end == an)
			return NULL; /* same as the plan without it */
		an = end;
	}
	if (plan & T_FOLD) {
		size_t fn = 0;
		a = fold_once(memo, a, an, &fn);
		if (!a || fn == 0 || a[0] != '/')
			return NULL;
		an = strnlen(a, fn); /* NFKC never yields NUL from non-NUL; be sure anyway */
	}
	if ((plan & (T_SEPS | T_BSLASH)) && memchr(a, '\\', an)) {
		char *w = arena_copy(&memo->arena, a, an);
		for (size_t i = 0; i < an; i++)
			if (w[i] == '\\')
				w[i] = '/';
		a = w;
	}
	*outn = an;
	return a;
}

/* One computation: where the readings go, and the buffers reused for every plan. */
#define READINGS_SLOTS (2 * EG_READINGS_MAX) /* add()'s open-addressing table, half full at most */
_Static_assert((READINGS_SLOTS & (READINGS_SLOTS - 1)) == 0 && EG_READINGS_MAX < 255, "READINGS_SLOTS");
struct gen {
	struct eg_readings *out;
	size_t len[EG_READINGS_MAX]; /* strlen of out->v[i].path */
	uint8_t slot[READINGS_SLOTS]; /* 1 + the index in out->v of a reading, by hash; 0: free */
	struct scratch sc;
	struct memo memo;
	size_t work;     /* bytes an ambiguous target's compositions prepared and resolved */
	bool exhaustive; /* every composition, none skipped, no work bound (the tests' reference) */
};

/* A hash of a reading for add()'s table: 8 bytes at a time (a reading is resolved
 * hundreds of times for an ambiguous target; most are duplicates). No key: the table
 * holds EG_READINGS_MAX readings, so colliding ones cost at most the scan it replaces. */
static uint64_t reading_hash(const char *p, size_t n, bool folded)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n ^ (folded ? 0x5555u : 0);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	uint64_t w = 0;
	memcpy(&w, p + i, n - i);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 29);
}

/* Adds a copy of path[0..n) unless it is there already. false when out is full and it
 * is new. */
static bool add(struct gen *g, const char *path, size_t n, bool folded)
{
	struct eg_readings *out = g->out;
	if (!path)
		return true;
	out->resolved++;
	size_t slot = (size_t)reading_hash(path, n, folded) & (READINGS_SLOTS - 1);
	for (; g->slot[slot]; slot = (slot + 1) & (READINGS_SLOTS - 1)) {
		size_t i = g->slot[slot] - 1u;
		if (g->len[i] == n && out->v[i].folded == folded && memcmp(out->v[i].path, path, n) == 0)
			return true;
	}
	if (out->n == EG_READINGS_MAX)
		return false;
	char *copy = xmalloc(n + 1);
	memcpy(copy, path, n);
	copy[n] = '\0';
	g->len[out->n] = n;
	g->slot[slot] = (uint8_t)(out->n + 1);
	out->v[out->n++] = (struct eg_reading){ copy, folded };
	return true;
}

/* The plan's reading of path into g (nothing when the plan does not apply). */
static bool apply(struct gen *g, const char *path, size_t n, unsigned plan)
{
	size_t an = 0, rn = 0;
	const char *a = prepare(path, n, plan, &g->memo, &an);
	if (!a)
		return true;
	const char *r = resolve(&g->sc, a, an, plan, &rn);
	return add(g, r, rn, plan & T_FOLD);
}

/* What in a prepared string can make a resolve transform change its reading. */
struct triggers {
	bool authority;   /* a leading "//" (T_AUTHORITY applies) */
	bool semi;        /* a ';' (T_PARAMS) */
	bool trim;        /* a ':' ("::$DATA"), or a segment or ";params"-cut piece, not "." or
			   * "..", ending in '.' or ' ' (T_WINDOWS: windows_trim) */
	bool suffix;      /* a '.' after a byte other than '/' and '.' (T_SUFFIX: resolve) */
	bool empty;       /* "//": an empty segment (T_KEEP_EMPTY) */
	bool semi_empty;  /* "/;": a segment ";params" strips to nothing */
	bool trim_empty;  /* ' ' or ':': a segment windows_trim may trim to nothing */
};

static struct triggers triggers_of(const char *s, size_t n)
{
	struct triggers t = { .authority = n >= 2 && s[1] == '/' };
	size_t seg = 0; /* where the current segment starts (after its '/') */
	for (size_t i = 0; i <= n; i++) {
		char c = i < n ? s[i] : '/';
		if (c == ':' || c == ' ')
			t.trim_empty = true, t.trim |= c == ':';
		if (c == '.' && i && s[i - 1] != '/' && s[i - 1] != '.')
			t.suffix = true;
		if (c == '/' || c == ';') {
			size_t pl = i - seg; /* the piece before this boundary */
			bool dots = (pl == 1 && s[seg] == '.') || (pl == 2 && s[seg] == '.' && s[seg + 1] == '.');
			if (pl && !dots && (s[i - 1] == '.' || s[i - 1] == ' '))
				t.trim = true;
		}
		if (c == ';')
			t.semi = true, t.semi_empty |= i && s[i - 1] == '/';
		if (c == '/' && i < n) {
			t.empty |= i && s[i - 1] == '/';
			seg = i + 1;
		}
	}
	return t;
}

/* true when the composition rb reads s as a smaller composition does (one of its
 * transforms has nothing to act on) or not at all: enumerated in increasing order, such
 * a composition adds nothing. */
static bool adds_nothing(unsigned rb, const struct triggers *t)
{
	if ((rb & T_AUTHORITY) && !t->authority)
		return true;
	if (((rb & T_PARAMS) && !t->semi) || ((rb & T_WINDOWS) && !t->trim) || ((rb & T_SUFFIX) && !t->suffix))
		return true;
	return (rb & T_KEEP_EMPTY) && !t->empty && !((rb & T_PARAMS) && t->semi_empty) &&
	       !((rb & T_WINDOWS) && t->trim_empty);
}

/* A target no two parsers read alike may reach public routes only, however it is read,
 * so it is read under every composition of the transforms, not only the plans above (whose
 * gaps tests/integration/boundary_property.t.mjs found: "/public%5Cx/..;/ADMIN%0d" and
 * the like). Each distinct prepared byte string is resolved under every composition of
 * the resolve transforms that can change it (at most 32 ways). -1 when the readings do
 * not fit: then the target is refused. Subsets are enumerated in increasing order, so
 * the readings come in the order of the full enumeration. */
#define PRE_BITS (T_FRAGMENT | T_DECODE2 | T_FOLD | T_SEPS | T_REPARSE | T_RAW | T_SLASH | T_BSLASH)
#define RESOLVE_BITS (T_AUTHORITY | T_PARAMS | T_WINDOWS | T_KEEP_EMPTY | T_SUFFIX)
#define PREPARED_MAX 128
static int every_reading(struct gen *g, const char *target, size_t n)
{
	const char *seen[PREPARED_MAX];
	size_t seen_n[PREPARED_MAX];
	bool seen_folded[PREPARED_MAX];
	size_t nseen = 0;
	int rc = 0;
	/* without a raw '#' the fragment cut does not apply (prepare) */
	unsigned pre_mask = PRE_BITS & ~(memchr(target, '#', n) || g->exhaustive ? 0u : (unsigned)T_FRAGMENT);
	unsigned pre = 0;
	do {
		if (((pre & T_RAW) && (pre & (T_DECODE2 | T_REPARSE | T_SLASH))) ||
		    ((pre & T_SEPS) && (pre & (T_SLASH | T_BSLASH))))
			goto next_pre;
		/* what a target costs to read every way is bounded: EG_READINGS_WORK counts the
		 * target once per composition prepared (decoded, folded), each prepared string once
		 * per composition resolved */
		if ((g->work += n) > EG_READINGS_WORK && !g->exhaustive) {
			rc = -1;
			break;
		}
		size_t pn = 0;
		const char *p = prepare(target, n, pre, &g->memo, &pn);
		if (!p)
			goto next_pre;
		bool folded = pre & T_FOLD, dup = false;
		for (size_t i = 0; i < nseen && !dup && !g->exhaustive; i++)
			dup = seen_n[i] == pn && seen_folded[i] == folded && memcmp(seen[i], p, pn) == 0;
		if (dup)
			goto next_pre;
		struct triggers trig = triggers_of(p, pn);
		split(&g->sc, p, pn, trig.trim || g->exhaustive); /* without it no composition reads T_WINDOWS */
		unsigned rb = 0;
		do {
			if (adds_nothing(rb, &trig) && !g->exhaustive)
				continue;
			size_t rn = 0;
			const char *r = resolve_split(&g->sc, p, pn, rb, &rn);
			if (!add(g, r, rn, folded) || ((g->work += pn) > EG_READINGS_WORK && !g->exhaustive))
				rc = -1;
		} while ((rb = (rb - RESOLVE_BITS) & RESOLVE_BITS) && rc == 0); /* the next subset */
		if (nseen < PREPARED_MAX)
			seen[nseen] = p, seen_n[nseen] = pn, seen_folded[nseen++] = folded;
next_pre:
		pre = (pre - pre_mask) & pre_mask;
	} while (pre && rc == 0);
	return rc;
}

static int path_part(const char *target, size_t *n)
{
	if (!target || target[0] != '/')
		return -1;
	*n = strcspn(target, "?");
	return *n > EG_TARGET_MAX ? -1 : 0;
}

/* A byte no plan but folding changes in a plain path and no parser reads two ways: ASCII
 * letters, digits and the unreserved and sub-delim marks without the ones a plan acts on
 * ('%' decoding, ';' params, '\\' separators, '#' fragments, ':' and '$' of "::$DATA",
 * spaces and controls, non-ASCII). */
static bool plain_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '-' ||
	       c == '_' || c == '.' ||
	       c == '~' || c == '!' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' || c == '+' ||
	       c == ',' || c == '=' || c == '@';
}

/* Where the suffix plan (T_SUFFIX) cuts the last segment seg[0..n), or n: the rule of
 * resolve(). */
static size_t suffix_cut(const char *seg, size_t n)
{
	const char *dot = n > 1 ? memchr(seg + 1, '.', n - 1) : NULL;
	if (dot && !all_dots(seg, (size_t)(dot - seg)))
		return (size_t)(dot - seg);
	return n;
}

/* The usual target, a plain path ("/api/orders/42", "/static/App.js"), has the same
 * readings under every plan but three: the path itself (strict), the path in lower case
 * (folded: ICU's case and compatibility folding of ASCII is exactly that), and, when its
 * last segment has an ".ext", the folded path without it. Those are computed in one
 * allocation (plain_readings), without decoding, folding (ICU) or resolving per plan.
 * A plain path has only plain bytes, no "//" (an authority, kept empty segments), and no
 * segment that is all dots or ends in a dot (dot segments, Windows trimming); anything
 * else takes every plan. Equal to eg_readings_compute_full on every target
 * (tests/unit/test_readings.c, tests/fuzz/fuzz_target.c). *last_seg: where the last
 * segment starts. */
static bool plain_path(const char *p, size_t n, size_t *last_seg)
{
	size_t seg = 1; /* start of the current segment */
	for (size_t i = 1; i <= n; i++) {
		if (i < n && p[i] != '/') {
			if (!plain_byte((unsigned char)p[i]))
				return false;
			continue;
		}
		size_t sl = i - seg;
		if (i < n && sl == 0)
			return false; /* "//" */
		if (sl && (p[i - 1] == '.' || all_dots(p + seg, sl)))
			return false;
		if (i < n)
			seg = i + 1;
	}
	*last_seg = seg;
	return true;
}

static bool plain_readings(const char *p, size_t n, struct eg_readings *out)
{
	size_t seg;
	if (!plain_path(p, n, &seg))
		return false;
	/* the last segment (empty after a trailing '/': no suffix reading) */
	size_t last = n - seg, cut = last ? suffix_cut(p + seg, last) : last;
	char *b = xmalloc(3 * n + 3), *f = b + n + 1;
	memcpy(b, p, n);
	b[n] = '\0';
	bool upper = false;
	for (size_t i = 0; i < n; i++) {
		upper |= p[i] >= 'A' && p[i] <= 'Z';
		f[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] - 'A' + 'a' : p[i]);
	}
	f[n] = '\0';
	if (!upper)
		f = b;
	out->v[0] = (struct eg_reading){ b, false };
	out->v[1] = (struct eg_reading){ f, true };
	out->n = 2;
	if (cut < last) {
		char *s = b + 2 * n + 2;
		memcpy(s, f, seg + cut);
		s[seg + cut] = '\0';
		out->v[out->n++] = (struct eg_reading){ s, true };
	}
	out->one_block = true;
	return true;
}

static int compute(const char *target, struct eg_readings *out, bool fast, bool exhaustive)
{
	/* not memset: v[] is 1 KB and only v[0..n) is ever read */
	out->n = 0, out->resolved = 0, out->ambiguous = NULL, out->one_block = false;
	size_t n;
	if (path_part(target, &n) != 0)
		return -1;
	if (fast && plain_readings(target, n, out))
		return 0;
	struct gen g = { .out = out, .exhaustive = exhaustive };
	out->ambiguous = ambiguity(&g.memo, target, n);
	/* Every plan is one of the compositions every_reading() enumerates, and the first
	 * composition is plan 0 (the strict reading, v[0]): an ambiguous target's readings are
	 * the same set without the plans (their order past v[0] differs; only the set and v[0]
	 * count for one, verdict.c judge()). */
	int rc = 0;
	if (out->ambiguous)
		rc = every_reading(&g, target, n);
	else
		for (size_t i = 0; i < sizeof(plans) / sizeof(plans[0]); i++)
			apply(&g, target, n, plans[i]);
	memo_free(&g.memo);
	scratch_free(&g.sc);
	if (rc != 0)
		eg_readings_free(out);
	return rc == 0 && out->n ? 0 : -1;
}

int eg_readings_compute(const char *target, struct eg_readings *out)
{
	return compute(target, out, true, false);
}

int eg_readings_compute_full(const char *target, struct eg_readings *out)
{
	return compute(target, out, false, false);
}

int eg_readings_compute_exhaustive(const char *target, struct eg_readings *out)
{
	return compute(target, out, false, true);
}

void eg_readings_free(struct eg_readings *r)
{
	if (r->one_block && r->n)
		free(r->v[0].path);
	else
		for (size_t i = 0; i < r->n; i++)
			free(r->v[i].path);
	r->n = 0;
	r->one_block = false;
}

int eg_path_strict(const char *target, char *out, size_t outlen)
{
	size_t n, seg;
	if (path_part(target, &n) != 0)
		return -1;
	if (plain_path(target, n, &seg)) { /* reading 0 of a plain path is the path */
		if (n >= outlen)
			return -1;
		memcpy(out, target, n);
		out[n] = '\0';
		return 0;
	}
	struct eg_readings one;
	one.n = 0, one.resolved = 0, one.one_block = false;
	struct gen g = { .out = &one };
	apply(&g, target, n, plans[0]);
	memo_free(&g.memo);
	scratch_free(&g.sc);
	int rc = one.n && g.len[0] < outlen ? 0 : -1;
	if (rc == 0)
		memcpy(out, one.v[0].path, g.len[0] + 1);
	eg_readings_free(&one);
	return rc;
}
