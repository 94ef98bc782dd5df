/* lane_parse.c - see lane_parse.h. Written for one shape, so each rule is a refusal:
 * anything this reader is unsure of is libmicrohttpd's to read (and answer 400/431 to). */
#include "lane_parse.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar */
static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* VCHAR, SP, HTAB: no controls, no obs-text (what other parsers read alike) */
static bool is_vchar_ws(unsigned char c)
{
	return (c >= 0x21 && c <= 0x7e) || c == ' ' || c == '\t';
}

/* Headers that change how the message is framed or the connection is kept: libmicrohttpd
 * applies them. */
static bool framing_header(const char *name, const char *value)
{
	if (strcasecmp(name, "Content-Length") == 0)
		return strcmp(value, "0") != 0;
	return strcasecmp(name, "Transfer-Encoding") == 0 || strcasecmp(name, "Connection") == 0 ||
	       strcasecmp(name, "Upgrade") == 0 || strcasecmp(name, "Expect") == 0 ||
	       strcasecmp(name, "TE") == 0 || strcasecmp(name, "Trailer") == 0;
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
	/* the whole block first: an incomplete one is never half-judged */
	const char *end = NULL;
	for (size_t i = 0; i + 3 < len; i++) {
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
			end = buf + i + 2; /* the empty line */
			break;
		}
	}
	if (!end)
		return len >= EG_LANE_MAX_BLOCK ? EG_LANE_NOT_OURS : EG_LANE_INCOMPLETE;
	long rl = request_line(buf, (size_t)(end - buf) + 2, path, m);
	if (rl < 0)
		return EG_LANE_NOT_OURS;
	unsigned hosts = 0;
	char *p = buf + rl;
	while (p < end) {
		if (m->n == EG_LANE_MAX_HEADERS)
			return EG_LANE_NOT_OURS;
		char *name = p;
		while (p < end && is_tchar((unsigned char)*p))
			p++;
		if (p == name || p >= end || *p != ':')
			return EG_LANE_NOT_OURS; /* also obs-fold: a line starting with SP/HTAB */
		*p++ = '\0';
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		char *value = p;
		while (p < end && is_vchar_ws((unsigned char)*p))
			p++;
		/* CRLF right after the value (end points at a CR too) */
		if (p >= end + 2 || p[0] != '\r' || p[1] != '\n' || p == value)
			return EG_LANE_NOT_OURS;
		if (p[-1] == ' ' || p[-1] == '\t')
			return EG_LANE_NOT_OURS; /* trailing whitespace: trimmed or not, by parser */
		*p = '\0';
		p += 2;
		if (framing_header(name, value))
			return EG_LANE_NOT_OURS;
		if (strcasecmp(name, "Host") == 0)
			hosts++;
		m->name[m->n] = name;
		m->value[m->n++] = value;
	}
	if (p != end || hosts != 1)
		return EG_LANE_NOT_OURS;
	return (long)(end - buf) + 2;
}
