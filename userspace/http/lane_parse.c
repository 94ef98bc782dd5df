/* lane_parse.c - see lane_parse.h. Written for one shape, so each rule is a refusal:
 * anything this reader is unsure of is libmicrohttpd's to read (and answer 400/431 to). */
#include "lane_parse.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Byte classes, one table lookup per byte: RFC 9110 tchar; VCHAR, SP, HTAB (no controls, no
 * obs-text: what other parsers read alike). */
enum { TCHAR = 1, VALUE = 2 };
static unsigned char cls[256];

__attribute__((constructor)) static void lane_classes(void)
{
	for (int c = 0x21; c <= 0x7e; c++)
		cls[c] |= VALUE;
	cls[' '] |= VALUE;
	cls['\t'] |= VALUE;
	for (int c = 0; c < 256; c++)
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    (c && strchr("!#$%&'*+-.^_`|~", c)))
			cls[c] |= TCHAR;
}

/* Headers that change how the message is framed or the connection is kept: libmicrohttpd
 * applies them. By length first: most names are none of these. */
static bool framing_header(const char *name, size_t len, const char *value)
{
	/* first letters of the names below: nginx's own X-... names stop here */
	switch (name[0] | 0x20) {
	case 't': case 'e': case 'u': case 'c':
		break;
	default:
		return false;
	}
	switch (len) {
	case 2:
		return strcasecmp(name, "TE") == 0;
	case 6:
		return strcasecmp(name, "Expect") == 0;
	case 7:
		return strcasecmp(name, "Upgrade") == 0 || strcasecmp(name, "Trailer") == 0;
	case 10:
		return strcasecmp(name, "Connection") == 0;
	case 14:
		return strcasecmp(name, "Content-Length") == 0 && strcmp(value, "0") != 0;
	case 17:
		return strcasecmp(name, "Transfer-Encoding") == 0;
	default:
		return false;
	}
}

/* The first byte from p on that is not VCHAR, SP or HTAB (or end): where a value's line
 * ends, if that byte is its CR. One pass finds the line's end and checks every byte of the
 * value. Sixteen (or eight) at a time: a chunk with no byte below 0x20, none 0x7f and none
 * from 0x80 up is all VCHAR/SP; any other chunk (a tab, the CR, a bad byte) is read byte by
 * byte. A token is most of the block. */
static char *value_end(char *p, const char *end)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
#ifdef __SSE2__
	/* as signed bytes VCHAR/SP is 0x20..0x7e: below 0x20 are controls, HTAB and 0x80 up */
	const __m128i low = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i bad = _mm_or_si128(_mm_cmplt_epi8(x, low), _mm_cmpeq_epi8(x, del));
		unsigned mask = (unsigned)_mm_movemask_epi8(bad);
		if (mask == 0) {
			p += 16;
			continue;
		}
		/* straight to the first byte outside 0x20..0x7e: a tab is a value byte (go on
		 * after it), anything else ends the value */
		p += __builtin_ctz(mask);
		if (*p != '\t')
			return p;
		p++;
	}
#endif
	while (end - p >= 8) {
		uint64_t x, d;
		memcpy(&x, p, 8);
		d = x ^ (0x7f * ones);
		if (((x & highs) | ((x - 0x20 * ones) & ~x & highs) | ((d - ones) & ~d & highs)) == 0) {
			p += 8;
			continue;
		}
		for (const char *stop = p + 8; p < stop; p++)
			if (!(cls[(unsigned char)*p] & VALUE))
				return p;
	}
	while (p < end && (cls[(unsigned char)*p] & VALUE))
		p++;
	return p;
}

/* The first byte from p on that is not a tchar (or end): where a header name ends. Most
 * names are letters, digits and '-' only: sixteen of those at a time, then the table from
 * the first other byte on (another tchar, or the ':' that ends the name). */
static char *name_end(char *p, const char *end)
{
#ifdef __SSE2__
	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		/* as signed bytes, 0x80 up is negative: none of these */
		__m128i l = _mm_or_si128(x, _mm_set1_epi8(0x20)); /* 'A'..'Z' and only they fold into 'a'..'z' */
		__m128i letter = _mm_and_si128(_mm_cmpgt_epi8(l, _mm_set1_epi8('a' - 1)), _mm_cmplt_epi8(l, _mm_set1_epi8('z' + 1)));
		__m128i digit = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)), _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));
		__m128i dash = _mm_cmpeq_epi8(x, _mm_set1_epi8('-'));
		unsigned ok = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(letter, digit), dash));
		if (ok != 0xffff) {
			p += __builtin_ctz(~ok);
			break;
		}
		p += 16;
	}
#endif
	while (p < end && (cls[(unsigned char)*p] & TCHAR))
		p++;
	return p;
}

/* The request line: METHOD SP path SP HTTP/1.1 CRLF. Returns its length or -1. */
static long request_line(char *buf, size_t len, const char *path, struct eg_lane_msg *m)
{
	size_t pl = strlen(path), off;
	if (len >= 4 && memcmp(buf, "GET ", 4) == 0) {
		m->method = "GET";
		off = 4;
	} else if (len >= 5 && memcmp(buf, "HEAD ", 5) == 0) {
		m->method = "HEAD";
		off = 5;
	} else {
		return -1;
	}
	static const char ver[] = " HTTP/1.1\r\n";
	if (len < off + pl + sizeof(ver) - 1)
		return -1;
	if (memcmp(buf + off, path, pl) != 0 || memcmp(buf + off + pl, ver, sizeof(ver) - 1) != 0)
		return -1;
	buf[off + pl] = '\0';
	m->target = buf + off;
	return (long)(off + pl + sizeof(ver) - 1);
}

long eg_lane_parse(char *buf, size_t len, const char *path, struct eg_lane_msg *m)
{
	m->n = 0;
	if (len > EG_LANE_MAX_BLOCK)
		len = EG_LANE_MAX_BLOCK;
	/* One pass, line by line, up to the first empty line. A request is accepted only once
	 * that line is read, so an incomplete block is never judged: running out of bytes
	 * first is "incomplete" (or not ours past the bound). A line that breaks the shape is
	 * refused at once, complete block or not: either way the connection goes to
	 * libmicrohttpd unread. (There was a pass that found the block's end first: a memchr
	 * per line, about 450 instructions a verdict.) */
	const long short_of = len >= EG_LANE_MAX_BLOCK ? EG_LANE_NOT_OURS : EG_LANE_INCOMPLETE;
	char *const end = buf + len;
	char *nl = memchr(buf, '\n', len);
	if (!nl)
		return short_of;
	long rl = request_line(buf, (size_t)(nl - buf) + 1, path, m);
	if (rl < 0)
		return EG_LANE_NOT_OURS;
	unsigned hosts = 0;
	char *p = buf + rl;
	for (;;) {
		if (end - p < 2)
			return short_of;
		if (p[0] == '\r' && p[1] == '\n')
			break; /* the empty line */
		if (m->n == EG_LANE_MAX_HEADERS)
			return EG_LANE_NOT_OURS;
		char *name = p;
		p = name_end(p, end);
		if (p >= end)
			return short_of;
		if (p == name || *p != ':')
			return EG_LANE_NOT_OURS; /* also obs-fold: a line starting with SP/HTAB */
		size_t name_len = (size_t)(p - name);
		*p++ = '\0';
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		char *value = p;
		/* CRLF the line must end with, and every byte before it VCHAR, SP or HTAB: the
		 * first byte that is not one of those must be that CR */
		p = value_end(value, end);
		if (end - p < 2)
			return short_of;
		if (*p != '\r' || p[1] != '\n' || p == value)
			return EG_LANE_NOT_OURS;
		if (p[-1] == ' ' || p[-1] == '\t')
			return EG_LANE_NOT_OURS; /* trailing whitespace: trimmed or not, by parser */
		*p = '\0';
		p += 2;
		if (framing_header(name, name_len, value))
			return EG_LANE_NOT_OURS;
		if (name_len == 4 && (name[0] | 0x20) == 'h' && strcasecmp(name, "Host") == 0)
			hosts++;
		m->name[m->n] = name;
		m->name_len[m->n] = (unsigned short)name_len; /* < EG_LANE_MAX_BLOCK */
		m->value[m->n++] = value;
	}
	if (hosts != 1)
		return EG_LANE_NOT_OURS;
	return (long)(p - buf) + 2;
}
