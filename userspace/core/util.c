/* util.c - encodings, constant-time compare, random bytes, time, files. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* --- base64 ------------------------------------------------------------------ */

static const char b64url_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char b64_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Decoding tables (value or -1), built once at start-up from the alphabets: a table
 * lookup per character instead of a chain of range tests (this is on the hot path of
 * every cold bearer token). */
static int8_t b64url_tab[256], b64std_tab[256];
/* The same per position of a quad, already shifted into place (6 bits each of a 24-bit
 * group); a character outside the alphabet has bit 31, which no valid group sets. A quad
 * is then four loads and three ORs, and one test per token instead of one per quad. */
#define B64_BAD 0x80000000u
static uint32_t b64url_quad[4][256];

__attribute__((constructor)) static void b64_tables(void)
{
	memset(b64url_tab, -1, sizeof(b64url_tab));
	memset(b64std_tab, -1, sizeof(b64std_tab));
	for (int i = 0; i < 64; i++) {
		b64url_tab[(unsigned char)b64url_alpha[i]] = (int8_t)i;
		b64std_tab[(unsigned char)b64_alpha[i]] = (int8_t)i;
	}
	for (int c = 0; c < 256; c++)
		for (int k = 0; k < 4; k++)
			b64url_quad[k][c] = b64url_tab[c] < 0 ? B64_BAD : (uint32_t)b64url_tab[c] << (18 - 6 * k);
}

/* Decodes unpadded groups; rejects a dangling single char and non-zero
 * trailing bits, so every byte string has exactly one accepted encoding.
 * Four characters at a time: an invalid one (negative in tab) shows in the OR
 * of the four, so a whole group costs one test (a JWS is mostly base64url). */
static long b64_core(const char *in, size_t len, uint8_t *out, const int8_t *tab)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0, o = 0, rest;
	uint32_t v;

	if (len % 4 == 1)
		return -1;
	if (tab == b64url_tab) {
		/* whole quads: the bad bits OR-ed up and tested once (out is scratch until then) */
		uint32_t bad = 0;
		for (; len - i >= 4; i += 4, o += 3) {
			v = b64url_quad[0][p[i]] | b64url_quad[1][p[i + 1]] | b64url_quad[2][p[i + 2]] |
			    b64url_quad[3][p[i + 3]];
			bad |= v;
			out[o] = (uint8_t)(v >> 16);
			out[o + 1] = (uint8_t)(v >> 8);
			out[o + 2] = (uint8_t)v;
		}
		if (bad & B64_BAD)
			return -1;
	}
	for (; len - i >= 4; i += 4) {
		int a = tab[p[i]], b = tab[p[i + 1]], c = tab[p[i + 2]], d = tab[p[i + 3]];
		if ((a | b | c | d) < 0)
			return -1;
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		out[o++] = (uint8_t)(v >> 16);
		out[o++] = (uint8_t)(v >> 8);
		out[o++] = (uint8_t)v;
	}
	rest = len - i; /* 0, 2 (one byte and 4 spare bits) or 3 (two bytes and 2 spare bits) */
	if (rest) {
		int a = tab[p[i]], b = tab[p[i + 1]], c = rest == 3 ? tab[p[i + 2]] : 0;
		if ((a | b | c) < 0)
			return -1;
		v = (uint32_t)a << 12 | (uint32_t)b << 6 | (uint32_t)c; /* 18 bits */
		if (v & (rest == 3 ? 0x3u : 0x3ffu))
			return -1;
		out[o++] = (uint8_t)(v >> 10);
		if (rest == 3)
			out[o++] = (uint8_t)(v >> 2);
	}
	if (o > LONG_MAX)
		return -1;
	return (long)o;
}

long b64url_decode(const char *in, size_t len, uint8_t *out)
{
	return b64_core(in, len, out, b64url_tab);
}

long b64_decode(const char *in, size_t len, uint8_t *out)
{
	size_t pad = 0;

	if (len % 4)
		return -1;
	while (pad < 2 && len > pad && in[len - 1 - pad] == '=')
		pad++;
	return b64_core(in, len - pad, out, b64std_tab);
}

/* RFC 6750 b64token: base64url, '.', and ~ + / = (opaque tokens for introspection) */
static const char b64token_extra[] = "-_.~+/=";

static bool b64token_char(unsigned char c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
	       (c && memchr(b64token_extra, c, sizeof(b64token_extra) - 1));
}

bool b64token_chars_ok(const char *s, size_t len)
{
	size_t i = 0;

#ifdef __SSE2__
	/* sixteen at a time (a JWS is 300-1,500 of them): letters by folding case, then
	 * '-' '.' '/' 0-9 as one range, then + = _ ~. Signed compares: a byte >= 0x80 is
	 * negative and falls in no range. */
	const __m128i fold = _mm_set1_epi8(0x20), a1 = _mm_set1_epi8('a' - 1), z1 = _mm_set1_epi8('z' + 1);
	const __m128i lo = _mm_set1_epi8('-' - 1), hi = _mm_set1_epi8('9' + 1);
	const __m128i plus = _mm_set1_epi8('+'), eq = _mm_set1_epi8('='), us = _mm_set1_epi8('_'),
		      tilde = _mm_set1_epi8('~');
	for (; i + 16 <= len; i += 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		__m128i l = _mm_or_si128(x, fold);
		__m128i ok = _mm_and_si128(_mm_cmpgt_epi8(l, a1), _mm_cmplt_epi8(l, z1));
		ok = _mm_or_si128(ok, _mm_and_si128(_mm_cmpgt_epi8(x, lo), _mm_cmplt_epi8(x, hi)));
		ok = _mm_or_si128(ok, _mm_or_si128(_mm_cmpeq_epi8(x, plus), _mm_cmpeq_epi8(x, eq)));
		ok = _mm_or_si128(ok, _mm_or_si128(_mm_cmpeq_epi8(x, us), _mm_cmpeq_epi8(x, tilde)));
		if (_mm_movemask_epi8(ok) != 0xffff)
			return false;
	}
#endif
	for (; i < len; i++)
		if (!b64token_char((unsigned char)s[i]))
			return false;
	return true;
}

static size_t b64_encode_core(const uint8_t *in, size_t len, char *out, const char *alpha)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
		out[o++] = alpha[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
	}
	out[o] = '\0';
	return o;
}

size_t b64url_encode(const uint8_t *in, size_t len, char *out)
{
	return b64_encode_core(in, len, out, b64url_alpha);
}

/* Not in util.h on purpose: only the tests and fixtures need padded base64 out. */
size_t eg_b64_encode(const uint8_t *in, size_t len, char *out);
size_t eg_b64_encode(const uint8_t *in, size_t len, char *out)
{
	size_t o = b64_encode_core(in, len, out, b64_alpha);
	while (o % 4)
		out[o++] = '=';
	out[o] = '\0';
	return o;
}

/* --- secrets, randomness, time ---------------------------------------------- */

bool ct_equal(const void *a, const void *b, size_t len)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;
	size_t i;

	for (i = 0; i < len; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

/* ct_equal 8 bytes a step, for long strings (a large token or certificate header: byte by
 * byte costs a third of a microsecond per token). */
bool ct_equal_words(const void *a, const void *b, size_t len)
{
	const uint8_t *p = a, *q = b;
	uint64_t d = 0, x, y;
	size_t i = 0;

#ifdef __SSE2__
	/* sixteen bytes a step: the differences OR-ed together, one test at the end */
	__m128i acc = _mm_setzero_si128();
	for (; i + 16 <= len; i += 16)
		acc = _mm_or_si128(acc, _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(p + i)),
						      _mm_loadu_si128((const __m128i *)(const void *)(q + i))));
	d = (uint64_t)_mm_cvtsi128_si64(acc) | (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc));
#endif
	for (; i + 8 <= len; i += 8) {
		memcpy(&x, p + i, 8);
		memcpy(&y, q + i, 8);
		d |= x ^ y;
	}
	for (; i < len; i++)
		d |= (uint8_t)(p[i] ^ q[i]);
	return d == 0;
}

int random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int64_t now_realtime_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

uint64_t now_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- hex, percent, forms ------------------------------------------------------ */

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char h[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = h[in[i] >> 4];
		out[2 * i + 1] = h[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *in, uint8_t *out, size_t outlen)
{
	size_t i;

	if (strlen(in) != 2 * outlen)
		return -1;
	for (i = 0; i < outlen; i++) {
		int hi = hex_digit((unsigned char)in[2 * i]), lo = hex_digit((unsigned char)in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

long pct_decode(const char *in, size_t len, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '%') {
			int hi, lo;
			if (len - i < 3)
				return -1;
			hi = hex_digit((unsigned char)in[i + 1]);
			lo = hex_digit((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0')
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (long)o;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

char *pct_encode(const char *in)
{
	static const char h[] = "0123456789ABCDEF";
	size_t n = strlen(in), o = 0, i;
	char *out = xmalloc(3 * n + 1);

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (unreserved(c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = h[c >> 4];
			out[o++] = h[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

/* Decodes one form component: '+' is a space, then percent escapes. */
static char *form_decode(const char *s, size_t len)
{
	char *tmp = xmalloc(len + 1), *out = xmalloc(len + 1);
	size_t i;

	for (i = 0; i < len; i++)
		tmp[i] = s[i] == '+' ? ' ' : s[i];
	if (pct_decode(tmp, len, out) < 0) {
		free(out);
		out = NULL;
	}
	free(tmp);
	return out;
}

char *form_get(const char *body, size_t len, const char *name, int *count)
{
	const char *p = body, *end = body + len;
	char *found = NULL;
	int n = 0;
	bool bad = false;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pe = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pe - p));
		const char *ne = eq ? eq : pe;
		char *k = form_decode(p, (size_t)(ne - p));

		if (k && strcmp(k, name) == 0) {
			n++;
			if (n == 1) {
				found = eq ? form_decode(eq + 1, (size_t)(pe - eq - 1)) : xstrdup("");
				if (!found)
					bad = true;
			}
		}
		free(k);
		if (!amp)
			break; /* pe is end: stepping past it would point two past the buffer */
		p = amp + 1;
	}
	if (count)
		*count = n;
	if (bad) { /* a malformed value of the wanted field is never returned */
		free(found);
		return NULL;
	}
	return found;
}

/* --- memory ------------------------------------------------------------------- */

static void oom(void)
{
	fputs("edgegate: out of memory\n", stderr);
	abort();
}

char *xstrdup(const char *s)
{
	char *r = strdup(s);
	if (!r)
		oom();
	return r;
}

void *xcalloc(size_t n, size_t size)
{
	void *r = calloc(n ? n : 1, size ? size : 1);
	if (!r)
		oom();
	return r;
}

void *xmalloc(size_t size)
{
	void *r = malloc(size ? size : 1);
	if (!r)
		oom();
	return r;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *r;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&r, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	return r;
}

/* --- files -------------------------------------------------------------------- */

char *read_file(const char *path, size_t max, size_t *len_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 4096, len = 0;
	char *buf;

	if (fd < 0)
		return NULL;
	buf = xmalloc(cap + 1);
	for (;;) {
		ssize_t n;
		if (len == cap) {
			if (cap > max) {
				free(buf);
				close(fd);
				errno = EFBIG;
				return NULL;
			}
			cap *= 2;
			buf = realloc(buf, cap + 1);
			if (!buf)
				oom();
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			free(buf);
			close(fd);
			errno = e;
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			free(buf);
			close(fd);
			errno = EFBIG;
			return NULL;
		}
	}
	close(fd);
	buf[len] = '\0';
	if (len_out)
		*len_out = len;
	return buf;
}

static int write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
	char *tmp = xasprintf("%s.tmp.XXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC), e;

	if (fd < 0) {
		e = errno;
		free(tmp);
		errno = e;
		return -1;
	}
	/* mode first, so a secret never exists with a wider mode */
	if (fchmod(fd, (mode_t)mode) || write_all(fd, data, len) || fsync(fd)) {
		e = errno;
		close(fd);
		unlink(tmp);
		free(tmp);
		errno = e;
		return -1;
	}
	if (close(fd) || rename(tmp, path)) {
		e = errno;
		unlink(tmp);
		free(tmp);
		errno = e;
		return -1;
	}
	free(tmp);
	return 0;
}

/* --- strings ------------------------------------------------------------------ */

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

bool str_ieq(const char *a, const char *b)
{
	while (*a && lower((unsigned char)*a) == lower((unsigned char)*b)) {
		a++;
		b++;
	}
	return *a == '\0' && *b == '\0';
}

bool str_iends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return m <= n && str_ieq(s + n - m, suffix);
}
