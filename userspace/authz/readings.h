/* readings.h - the paths an upstream may reasonably read a request target as.
 *
 * nginx forwards $request_uri untouched, so what the upstream serves depends on its own
 * parser: one decodes twice, one treats '\' as '/', one drops ";params" before removing
 * dot segments, one folds case or compatibility characters, one trims Windows trailing
 * dots, one (Spring) serves "/admin.json" from "/admin". The verdict evaluates the policy for every reading and allows only when every
 * reading is allowed (the most restrictive reading wins).
 *
 * Readings are a fixed, bounded list of transform plans composed in one order
 * (fragment cut, percent-decoding, one more decoding, a decoded '?' or '#' ending the
 * path, case/compatibility folding,
 * separators, leading authority, ;params, Windows trimming, dot segments with or without
 * merging "//", the last segment's ".ext"); duplicates are dropped. Reading 0 is the strict one: RFC 3986 (decoded,
 * encoded '/' and '\' kept as text, ";params" kept as text) with "//" merged as nginx
 * does. A reading marked `folded` is lower-case and is matched case-insensitively. */
#ifndef EG_READINGS_H
#define EG_READINGS_H

#include <stdbool.h>
#include <stddef.h>

#define EG_READINGS_MAX 64 /* an ambiguous target is read every way (readings.c) */
#define EG_TARGET_MAX 4096 /* longest path (before '?') whose readings are computed */
/* An ambiguous target is refused when reading it every way would take more than this many
 * bytes of prepared and resolved paths: the cost of judging one is bounded whatever its
 * length (a 4 KB one with every trigger would take 200 times a short one's). */
#define EG_READINGS_WORK (32 * 1024)

struct eg_reading {
	char *path;  /* starts with '/'; owned */
	bool folded; /* case-folded: match route prefixes case-insensitively */
};

struct eg_readings {
	size_t n;
	struct eg_reading v[EG_READINGS_MAX];
	/* NULL, or why no two parsers read this target alike ("raw_fragment",
	 * "bad_escape", "control_char", "encoded_separator", "encoded_control",
	 * "bad_utf8", "compat_syntax", "raw_backslash"): such a target may only reach public routes. */
	const char *ambiguous;
	bool one_block; /* the paths share one allocation, v[0].path (the plain-target fast path) */
	size_t resolved; /* plans and compositions that gave a reading, duplicates included */
};

/* Computes the readings of an origin-form target (path, optionally "?query"). The
 * query never takes part. A plain path (ASCII letters, digits, a few marks, no "//" nor
 * dot segments; readings.c) takes a fast path with the same result. A target no two parsers read
 * alike (ambiguous) is read under every composition of the transforms (those a transform
 * cannot change skipped: the same set; v[0] is the strict reading, the order of the others
 * is not the plans'). -1 when the target is not a path ("", no leading '/') or its
 * path is longer than EG_TARGET_MAX, or an ambiguous one has more than EG_READINGS_MAX readings
 * or takes more than EG_READINGS_WORK; out is then empty. */
int eg_readings_compute(const char *target, struct eg_readings *out);

/* The same, always through every plan: the reference the plain-target fast path of
 * eg_readings_compute is tested against (tests/unit/test_readings.c). */
int eg_readings_compute_full(const char *target, struct eg_readings *out);

/* An ambiguous target read under every composition with none skipped (no transform left
 * out for want of its trigger, no prepared string deduplicated, no EG_READINGS_WORK
 * bound): the reference the pruning of eg_readings_compute_full is tested against (the
 * same set of readings, the same v[0]). Other targets as eg_readings_compute_full. */
int eg_readings_compute_exhaustive(const char *target, struct eg_readings *out);

void eg_readings_free(struct eg_readings *r);

/* Reading 0 alone, into out (room for the result + NUL). -1 as above or when out is
 * too small. */
int eg_path_strict(const char *target, char *out, size_t outlen);

#endif
