/* json_fast.h - the strict JSON reader of token payloads: simdjson (Debian's libsimdjson),
 * giving jansson values, so every other module keeps reading claims with jansson.
 *
 * Why: jansson's lexer reads a byte at a time through a callback and a growable buffer;
 * it was 43,000 of the 75,000 instructions an uncached bearer verdict spends besides the
 * signature and the cached path (about 5 µs for a 214-byte claims set). simdjson validates
 * the whole document (grammar, UTF-8, numbers) in a few thousand.
 *
 * Contract (checked by tests/fuzz/fuzz_json.c against jansson, and test_jose): the result is
 * what json_loadb(buf, len, JSON_REJECT_DUPLICATES) gives when that is an object, value and
 * type for type (integer vs real), or NULL where jansson fails or gives a non-object:
 * duplicate members, NUL in a string or member name (\u0000), integers outside int64,
 * reals that overflow, invalid UTF-8 or lone surrogates, trailing bytes, more than 2,048
 * levels of nesting. Never more lenient than jansson. */
#ifndef EG_JSON_FAST_H
#define EG_JSON_FAST_H

#include <jansson.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes the caller's buffer must have readable past len (simdjson reads whole blocks). */
#define EG_JSON_PADDING 64

/* A new object, or NULL (not JSON, not an object, or refused as above). buf must have
 * len + EG_JSON_PADDING readable bytes; it is not modified. Thread-safe (the parser's
 * buffers are per thread and reused). */
json_t *eg_json_object_parse(const char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
