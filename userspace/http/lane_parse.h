/* lane_parse.h - the strict reader of the one request shape the verdict lane answers.
 *
 * nginx's auth subrequest is always the same simple HTTP/1.1 message: "GET" or "HEAD",
 * the verdict path, no body, tchar header names, printable values, CRLF lines. Only that
 * shape is accepted; everything else (another path or method, a query, obs-fold, bare LF,
 * control bytes or obs-text, a body, Connection/Upgrade/Expect/Transfer-Encoding, a
 * missing or repeated Host, an empty value, an incomplete or oversized header block) is
 * reported as not ours, and libmicrohttpd gets the connection with every byte unread. */
#ifndef EG_LANE_PARSE_H
#define EG_LANE_PARSE_H

#include <stddef.h>

#define EG_LANE_MAX_HEADERS 64
#define EG_LANE_MAX_BLOCK 16384 /* the request line and header block, bytes */

struct eg_lane_msg {
	const char *method; /* "GET" or "HEAD" */
	const char *target; /* the path, as received (no query) */
	size_t n;
	const char *name[EG_LANE_MAX_HEADERS];  /* in order, NUL-terminated in the buffer */
	const char *value[EG_LANE_MAX_HEADERS]; /* leading whitespace skipped, never empty */
	unsigned short name_len[EG_LANE_MAX_HEADERS]; /* strlen(name[i]), known from the parse */
};

enum { EG_LANE_NOT_OURS = -1, EG_LANE_INCOMPLETE = 0 };

/* Parses the request at the start of buf (len bytes; NULs are written into it). Returns
 * the bytes the request takes (> 0), EG_LANE_INCOMPLETE when the header block has not
 * ended within len bytes (and len < EG_LANE_MAX_BLOCK) and nothing before that breaks the
 * shape, or EG_LANE_NOT_OURS. path is the
 * one target accepted ("/auth"). */
long eg_lane_parse(char *buf, size_t len, const char *path, struct eg_lane_msg *m);

#endif
