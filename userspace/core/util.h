/* util.h - small helpers with no better home: encodings, constant-time compare,
 * random bytes, time, string lists. */
#ifndef EG_UTIL_H
#define EG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* base64url without padding (RFC 7515 §2). Decoding is strict: it rejects padding,
 * characters outside the alphabet, and non-canonical trailing bits.
 * Returns decoded length or -1. out must hold b64url_decoded_max(len) bytes. */
#define b64url_decoded_max(n) (((n) * 3) / 4 + 3)
#define b64url_encoded_len(n) ((((n) + 2) / 3) * 4)
long b64url_decode(const char *in, size_t len, uint8_t *out);
size_t b64url_encode(const uint8_t *in, size_t len, char *out); /* NUL-terminates */

/* Standard base64 (with padding), strict. -1 on error. */
long b64_decode(const char *in, size_t len, uint8_t *out);

/* Every byte is base64url, '.', or one of RFC 6750's other b64token characters ~ + / =
 * (a bearer token's alphabet); true for len 0. */
bool b64token_chars_ok(const char *s, size_t len);

bool ct_equal(const void *a, const void *b, size_t len);
bool ct_equal_words(const void *a, const void *b, size_t len);
int random_bytes(void *buf, size_t len); /* 0 ok */

int64_t now_realtime_s(void);
uint64_t now_mono_ns(void);

/* Value of one hex digit (either case), -1 if c is not one. */
int hex_digit(int c);
void hex_encode(const uint8_t *in, size_t len, char *out); /* lower case, NUL-terminated */
int hex_decode(const char *in, uint8_t *out, size_t outlen); /* exact length, 0 ok */

/* Percent-decoding of a URL component; '+' is left alone. -1 on bad escape or NUL.
 * out must hold len + 1 bytes; it is NUL-terminated. Returns the decoded length. */
long pct_decode(const char *in, size_t len, char *out);
/* Percent-encodes everything but unreserved characters. Caller frees. */
char *pct_encode(const char *in);

/* application/x-www-form-urlencoded lookup: value of name, decoded, caller frees.
 * *count receives the number of occurrences (duplicates are a protocol error). */
char *form_get(const char *body, size_t len, const char *name, int *count);

char *xstrdup(const char *s); /* aborts on OOM */
void *xcalloc(size_t n, size_t size);
void *xmalloc(size_t size);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reads a whole file (max bytes); NULL on error with errno set. */
char *read_file(const char *path, size_t max, size_t *len_out);
/* Writes a file atomically (tmp + rename) with the given mode. 0 ok. */
int write_file_atomic(const char *path, const void *data, size_t len, unsigned mode);

/* Case-insensitive ASCII compare helpers. */
bool str_ieq(const char *a, const char *b);
bool str_iends_with(const char *s, const char *suffix);

#endif
