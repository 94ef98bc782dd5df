/* ufold.c - Unicode checks and folds for path readings, on ICU (libicu). */
#include "ufold.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "util.h"

bool eg_utf8_valid(const char *s, size_t n)
{
	if (n > INT32_MAX)
		return false;
	UErrorCode e = U_ZERO_ERROR;
	int32_t need = 0;
	/* Preflight only: ICU reports ill-formed input (including non-shortest forms and
	 * surrogates) as U_INVALID_CHAR_FOUND before it reports the missing buffer. */
	u_strFromUTF8(NULL, 0, &need, s, (int32_t)n, &e);
	return e == U_BUFFER_OVERFLOW_ERROR || e == U_STRING_NOT_TERMINATED_WARNING || U_SUCCESS(e);
}

/* Overlong two-, three- and four-byte encodings of ASCII (C0 AE, E0 80 AE for '.') decoded in
 * place: lenient decoders read them so, strict ones refuse them. Returns the new length. */
static size_t decode_overlong_ascii(char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		unsigned c = (unsigned char)s[i];
		if ((c == 0xc0 || c == 0xc1) && i + 1 < n && ((unsigned char)s[i + 1] & 0xc0) == 0x80) {
			unsigned v = ((c & 0x1f) << 6) | ((unsigned char)s[i + 1] & 0x3f);
			if (v >= 0x20 && v != 0x7f) {
				s[o++] = (char)v;
				i += 2;
				continue;
			}
		}
		if (c == 0xe0 && i + 2 < n && ((unsigned char)s[i + 1] & 0xe0) == 0x80 &&
		    ((unsigned char)s[i + 2] & 0xc0) == 0x80) {
			unsigned v = (((unsigned char)s[i + 1] & 0x3f) << 6) | ((unsigned char)s[i + 2] & 0x3f);
			if (v < 0x80 && v >= 0x20 && v != 0x7f) {
				s[o++] = (char)v;
				i += 3;
				continue;
			}
		}
		if (c == 0xf0 && i + 3 < n && ((unsigned char)s[i + 1] & 0xf0) == 0x80 &&
		    ((unsigned char)s[i + 2] & 0xc0) == 0x80 && ((unsigned char)s[i + 3] & 0xc0) == 0x80) {
			unsigned v = (((unsigned char)s[i + 1] & 0x3f) << 12) | (((unsigned char)s[i + 2] & 0x3f) << 6) |
				     ((unsigned char)s[i + 3] & 0x3f);
			if (v < 0x80 && v >= 0x20 && v != 0x7f) {
				s[o++] = (char)v;
				i += 4;
				continue;
			}
		}
		s[o++] = s[i++];
	}
	return o;
}

/* Runs one UTF-16 -> UTF-16 ICU step with preflighting; frees in. */
typedef int32_t (*u16_step)(UChar *dst, int32_t cap, const UChar *src, int32_t n, UErrorCode *e);

static int32_t step_upper(UChar *dst, int32_t cap, const UChar *src, int32_t n, UErrorCode *e)
{
	return u_strToUpper(dst, cap, src, n, "", e);
}

static int32_t step_nfkc_cf(UChar *dst, int32_t cap, const UChar *src, int32_t n, UErrorCode *e)
{
	const UNormalizer2 *nf = unorm2_getNFKCCasefoldInstance(e);
	if (U_FAILURE(*e))
		return -1;
	return unorm2_normalize(nf, src, n, dst, cap, e);
}

/* A guess at the room a step needs, tried first: ICU's preflight (a call with no buffer)
 * doubled the cost of every fold, and an ambiguous target folds several strings. */
static int32_t room_guess(int32_t n, int32_t max16)
{
	int32_t guess = n * 2 + 16;
	return guess < max16 ? guess : max16;
}

static UChar *run_step(u16_step f, UChar *in, int32_t n, int32_t max16, int32_t *outn)
{
	UErrorCode e = U_ZERO_ERROR;
	int32_t cap = room_guess(n, max16);
	UChar *out = xmalloc(((size_t)cap + 1) * sizeof(UChar));
	int32_t len = f(out, cap + 1, in, n, &e);
	if (e == U_BUFFER_OVERFLOW_ERROR && len >= 0 && len <= max16) {
		free(out);
		out = xmalloc(((size_t)len + 1) * sizeof(UChar));
		e = U_ZERO_ERROR;
		len = f(out, len + 1, in, n, &e);
	}
	free(in);
	if (U_FAILURE(e) || len < 0 || len > max16) {
		free(out);
		return NULL;
	}
	*outn = len;
	return out;
}

char *eg_unicode_fold(const char *s, size_t n, size_t maxlen, size_t *outn)
{
	if (n > maxlen || maxlen > INT32_MAX / 4)
		return NULL;
	char *bytes = xmalloc(n + 1);
	memcpy(bytes, s, n);
	bool ascii = true;
	for (size_t i = 0; i < n && ascii; i++)
		ascii = (unsigned char)bytes[i] < 0x80;
	if (ascii) {
		/* The common case: for ASCII the fold is plain lower case (no ICU round trip). */
		for (size_t i = 0; i < n; i++)
			if (bytes[i] >= 'A' && bytes[i] <= 'Z')
				bytes[i] = (char)(bytes[i] - 'A' + 'a');
		bytes[n] = '\0';
		*outn = n;
		return bytes;
	}
	n = decode_overlong_ascii(bytes, n);
	UErrorCode e = U_ZERO_ERROR;
	int32_t n16 = 0;
	UChar *u = xmalloc((n + 1) * sizeof(UChar)); /* UTF-16 never has more units than UTF-8 bytes */
	u_strFromUTF8WithSub(u, (int32_t)n + 1, &n16, bytes, (int32_t)n, 0xfffd, NULL, &e);
	free(bytes);
	if (U_FAILURE(e)) {
		free(u);
		return NULL;
	}
	u = run_step(step_upper, u, n16, (int32_t)maxlen, &n16);
	if (u)
		u = run_step(step_nfkc_cf, u, n16, (int32_t)maxlen, &n16);
	if (!u)
		return NULL;
	/* at most 3 UTF-8 bytes per UTF-16 unit: no preflight */
	e = U_ZERO_ERROR;
	int32_t n8 = 0;
	char *out = xmalloc((size_t)n16 * 3 + 1);
	u_strToUTF8(out, n16 * 3 + 1, &n8, u, n16, &e);
	free(u);
	if (U_FAILURE(e) || n8 < 0 || (size_t)n8 > maxlen) {
		free(out);
		return NULL;
	}
	*outn = (size_t)n8;
	return out;
}
