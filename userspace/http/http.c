/* http.c - libmicrohttpd glue: listeners, the endpoint table, request accessors and
 * responses. Endpoints register themselves; this file knows none of them.
 *
 * Responses are queued on the second access-handler call, never the first: MHD sends
 * "Connection: close" when a response is queued before it has finished reading the
 * request, which would defeat nginx's upstream keep-alive. */
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "abuse.h"
#include "admission.h"
#include "config.h"
#include "lane.h"
#include "lane_parse.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "offload.h"
#include "unixsock.h"
#include "util.h"

#define MAX_ENDPOINTS 32
#define MAX_BODY (64 * 1024)

struct endpoint {
	const char *path;
	const char *methods;
	eg_handler_fn fn;
	bool store_offload; /* tried without the store first, else on a store worker (offload.h) */
	bool store_always;  /* every request on a store worker */
	eg_handler_fn busy; /* store_always: the answer when no worker can take it */
};

static struct endpoint endpoints[MAX_ENDPOINTS];
static size_t n_endpoints;

void eg_http_register(const char *path, const char *methods, eg_handler_fn fn)
{
	for (size_t i = 0; i < n_endpoints; i++) {
		if (strcmp(endpoints[i].path, path) == 0) {
			endpoints[i].methods = methods;
			endpoints[i].fn = fn;
			return;
		}
	}
	if (n_endpoints == MAX_ENDPOINTS)
		abort(); /* a programming error, not a runtime condition */
	endpoints[n_endpoints++] = (struct endpoint){ path, methods, fn, false, false, NULL };
}

void eg_http_store_offload(const char *path)
{
	for (size_t i = 0; i < n_endpoints; i++)
		if (strcmp(endpoints[i].path, path) == 0)
			endpoints[i].store_offload = true;
}

void eg_http_store_always(const char *path, eg_handler_fn busy)
{
	for (size_t i = 0; i < n_endpoints; i++)
		if (strcmp(endpoints[i].path, path) == 0) {
			endpoints[i].store_always = true;
			endpoints[i].busy = busy;
		}
}

static const struct endpoint *find_endpoint(const char *path)
{
	for (size_t i = 0; i < n_endpoints; i++)
		if (strcmp(endpoints[i].path, path) == 0)
			return &endpoints[i];
	for (size_t i = 0; i < n_endpoints; i++) {
		size_t l = strlen(endpoints[i].path);
		if (l >= 2 && strcmp(endpoints[i].path + l - 2, "/*") == 0 && strncmp(endpoints[i].path, path, l - 1) == 0)
			return &endpoints[i];
	}
	return NULL;
}

/* The verdict's endpoint, found once when the daemon starts (every endpoint is registered
 * by then): the lane asks for it on every request (a strcmp per endpoint before it). */
static const struct endpoint *auth_endpoint;

static bool method_allowed(const char *list, const char *m)
{
	if (strcmp(list, "*") == 0)
		return true;
	size_t ml = strlen(m);
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t l = comma ? (size_t)(comma - p) : strlen(p);
		if (l == ml && strncmp(p, m, l) == 0)
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

/* --- request accessors --------------------------------------------------------------- */

struct count_ctx {
	const char *name;
	int count;
	const char *first;
};

static enum MHD_Result count_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct count_ctx *c = cls;
	if (key && strcasecmp(key, c->name) == 0) {
		if (c->count++ == 0)
			c->first = value;
	}
	return MHD_YES;
}

/* Query arguments: a value that decodes to a NUL ("rd=/%00/evil") would be read cut
 * short; it counts twice, so every caller that insists on exactly one refuses it. */
static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
				 const char *value, size_t value_size)
{
	struct count_ctx *c = cls;
	count_value(cls, kind, key, value);
	if (key && value && strcasecmp(key, c->name) == 0 && strlen(value) != value_size)
		c->count++;
	return MHD_YES;
}

/* The headers the verdict path reads, found with one pass over the request instead of
 * one scan per lookup (a dozen lookups per verdict). Other names fall back to MHD. */
/* (known_index finds a literal of this table by its address: the order no longer matters) */
static const char *const known_names[] = {
	"X-Original-Method", "X-Original-URI", "Host", "X-Forwarded-Proto", "X-Real-IP", "X-Original-Host",
	"Authorization", "X-SSL-Client-Cert", "X-SSL-Client-Verify", "Accept", "Cookie", "X-Real-Port",
	"X-Server-Addr", "X-Server-Port", "X-Original-URL", "X-Forwarded-Uri", "X-Forwarded-Host",
	"X-Requested-With",
};
#define N_KNOWN (sizeof(known_names) / sizeof(known_names[0]))

struct eg_hdr_index {
	const char *value[N_KNOWN];
	unsigned count[N_KNOWN];
};

/* Per length, the known names of that length (at most KNOWN_PER_LEN), lowercased once at
 * start-up: a lookup compares only names of the right length, from the end, where names
 * sharing a prefix ("X-Original-URI", "X-Original-URL") differ. */
#define KNOWN_MAX_LEN 24
#define KNOWN_PER_LEN 4
static char known_lower[N_KNOWN][KNOWN_MAX_LEN];
static signed char known_by_len[KNOWN_MAX_LEN + 1][KNOWN_PER_LEN];
static unsigned char ascii_lower[256];

/* A known name of 8 bytes or more as up to three lowercased words (bytes 0-7, 8-15 and
 * the last eight, which overlap when it is shorter than 24): a compare is three loads and
 * no loop (KNOWN_MAX_LEN is 24). */
static struct {
	uint64_t first, mid, last;
} known_words[N_KNOWN];
_Static_assert(KNOWN_MAX_LEN <= 24, "three words cover a known name");

__attribute__((constructor)) static void known_lengths(void)
{
	for (int c = 0; c < 256; c++)
		ascii_lower[c] = (unsigned char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	memset(known_by_len, -1, sizeof(known_by_len));
	for (size_t i = 0; i < N_KNOWN; i++) {
		size_t len = strlen(known_names[i]), slot = 0;
		if (len > KNOWN_MAX_LEN)
			abort(); /* a name added to the table above that does not fit: a build error */
		for (size_t k = 0; k < len; k++)
			known_lower[i][k] = (char)ascii_lower[(unsigned char)known_names[i][k]];
		while (slot < KNOWN_PER_LEN && known_by_len[len][slot] >= 0)
			slot++;
		if (slot == KNOWN_PER_LEN)
			abort();
		known_by_len[len][slot] = (signed char)i;
		if (len >= 8) { /* known_eq's words (KNOWN_MAX_LEN is at most 24) */
			memcpy(&known_words[i].first, known_lower[i], 8);
			memcpy(&known_words[i].mid, known_lower[i] + (len > 16 ? 8 : 0), 8);
			memcpy(&known_words[i].last, known_lower[i] + len - 8, 8);
		}
	}
}

/* Eight bytes lowercased at once: a byte 'A'..'Z' (high bit clear) gains 0x20, others stay */
static uint64_t lower8(const char *p)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t x, h;
	memcpy(&x, p, 8);
	h = x & ~highs;
	uint64_t ge_a = h + (0x80 - 'A') * ones, gt_z = h + (0x7f - 'Z') * ones;
	uint64_t upper = (ge_a ^ gt_z) & ~x & highs;
	return x | (upper >> 2);
}

/* name (len bytes) equals known name i (of that length), ASCII case-insensitively */
static bool known_eq(const char *name, size_t i, size_t len)
{
	if (len < 8) {
		for (size_t k = 0; k < len; k++)
			if (ascii_lower[(unsigned char)name[k]] != (unsigned char)known_lower[i][k])
				return false;
		return true;
	}
	/* the last eight first (where same-length names differ) */
	return lower8(name + len - 8) == known_words[i].last && lower8(name) == known_words[i].first &&
	       (len <= 16 || lower8(name + 8) == known_words[i].mid);
}

static int known_index_n(const char *name, size_t len)
{
	if (len > KNOWN_MAX_LEN)
		return -1;
	for (size_t s = 0; s < KNOWN_PER_LEN; s++) {
		int i = known_by_len[len][s];
		if (i < 0)
			return -1;
		if (known_eq(name, (size_t)i, len))
			return i;
	}
	return -1;
}

/* The table's names by address, for known_index: open addressing, under a quarter full. */
#define KNOWN_BY_PTR 128
static struct {
	const char *name;
	int i;
} known_by_ptr[KNOWN_BY_PTR];

static size_t ptr_slot(const char *p)
{
	return (size_t)(((uintptr_t)p * 0x9e3779b97f4a7c15ull) >> 57); /* the top 7 bits: 0..127 */
}

__attribute__((constructor)) static void known_pointers(void)
{
	_Static_assert(KNOWN_BY_PTR == 128 && N_KNOWN < KNOWN_BY_PTR / 4, "ptr_slot takes 7 bits; room to probe");
	for (size_t i = 0; i < N_KNOWN; i++) {
		size_t s = ptr_slot(known_names[i]);
		while (known_by_ptr[s].name)
			s = (s + 1) % KNOWN_BY_PTR;
		known_by_ptr[s].name = known_names[i];
		known_by_ptr[s].i = (int)i;
	}
}

static int known_index(const char *name)
{
	/* callers pass literals (the proxy profiles' header names), which the linker merges
	 * with this table's: the same pointer is that name (found by its address, not by a
	 * walk of the table); else it is found by content */
	for (size_t s = ptr_slot(name); known_by_ptr[s].name; s = (s + 1) % KNOWN_BY_PTR)
		if (known_by_ptr[s].name == name)
			return known_by_ptr[s].i;
	return known_index_n(name, strlen(name));
}

/* One pass over the request headers: index the ones the daemon reads, and check that
 * what libmicrohttpd parsed is exactly what was received. libmicrohttpd 0.9.75 measures
 * header values with strlen(), so "X-Original-URI: /api/or\0ders" reads as "/api/or"
 * (value_size included); the bytes after a NUL are only visible in its read buffer, where
 * each line still sits in order between the request line and the end of the header block
 * (method + MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE). Each header must start where the
 * previous line ended (its value, then the CR LF or LF turned into NULs); anything else
 * (a NUL inside a value, an obs-fold continuation copied elsewhere) is a request two
 * parsers read differently. */
struct hdr_pass {
	struct eg_hdr_index *x;
	const char *begin, *end; /* the header block as received */
	const char *rl_end;      /* the end of the request line's version, in that block */
	const char *line_end;    /* where the previous header's value ended */
	bool bad;
};

static bool only_nuls(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p)
			return false;
	return true;
}

/* key starts right after the request line's end and one or two NULs (LF or CR LF) */
static bool after_request_line(const char *rl_end, const char *key)
{
	size_t gap = key > rl_end ? (size_t)(key - rl_end) : 0;
	return gap >= 1 && gap <= 2 && only_nuls(rl_end, key);
}

static enum MHD_Result index_value(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
				   const char *value, size_t value_size)
{
	struct hdr_pass *hp = cls;
	if (!key || !value || key < hp->begin || value + value_size >= hp->end || value < key + key_size) {
		hp->bad = true;
		return MHD_NO;
	}
	if (hp->line_end) {
		/* the previous line's terminator: LF (one NUL) or CR LF (two) */
		size_t gap = (size_t)(key - hp->line_end);
		if (key <= hp->line_end || gap > 2 || !only_nuls(hp->line_end, key)) {
			hp->bad = true;
			return MHD_NO;
		}
	} else if (!after_request_line(hp->rl_end, key)) {
		/* the first header: right after the request line's "HTTP/1.x" and its terminator
		 * (NULs in front of it were a line libmicrohttpd read as this header) */
		hp->bad = true;
		return MHD_NO;
	}
	hp->line_end = value + value_size;
	int k = known_index_n(key, key_size);
	if (k >= 0 && hp->x->count[k]++ == 0)
		hp->x->value[k] = value;
	return MHD_YES;
}

/* Indexes the headers; false when the header block is not what libmicrohttpd reports.
 * The request line is located by its version string, which libmicrohttpd leaves in place
 * in the block: a skipped line that merely ends in "HTTP/1.x" must not pass for it. */
static bool index_headers(struct MHD_Connection *conn, const char *method, const char *version,
			  struct eg_hdr_index *x)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	if (!ci || !method || !version)
		return false;
	struct hdr_pass hp = { .x = x, .begin = method, .end = method + ci->header_size };
	if (version <= method || version >= hp.end)
		return false;
	hp.rl_end = version + strnlen(version, (size_t)(hp.end - version));
	if (hp.rl_end - version != 8 || memcmp(version, "HTTP/1.", 7) != 0)
		return false;
	MHD_get_connection_values_n(conn, MHD_HEADER_KIND, index_value, &hp);
	if (hp.bad)
		return false;
	/* after the request line (no headers) or the last value: its terminator and the empty
	 * line, 2 to 4 NULs in all; anything else is a line libmicrohttpd skipped */
	const char *last = hp.line_end ? hp.line_end : hp.rl_end;
	size_t tail = (size_t)(hp.end - last);
	return tail >= 2 && tail <= 4 && only_nuls(last, hp.end);
}

struct iter_ctx {
	bool (*fn)(void *arg, const char *key, const char *value);
	void *arg;
};

static enum MHD_Result iter_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct iter_ctx *it = cls;
	(void)kind;
	return it->fn(it->arg, key, value) ? MHD_YES : MHD_NO;
}

void eg_req_headers_iter(const struct eg_req *r, bool (*fn)(void *arg, const char *key, const char *value), void *arg)
{
	if (r->lane) {
		for (size_t i = 0; i < r->lane->n; i++)
			if (!fn(arg, r->lane->name[i], r->lane->value[i]))
				return;
	} else if (r->conn) {
		struct iter_ctx it = { fn, arg };
		MHD_get_connection_values(r->conn, MHD_HEADER_KIND, iter_value, &it);
	}
}

struct iter_n_ctx {
	bool (*fn)(void *arg, const char *key, size_t key_len, const char *value);
	void *arg;
};

/* measured with strlen, as the callers read the name (a C string), whatever
 * libmicrohttpd's own key_size says */
static enum MHD_Result iter_n_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct iter_n_ctx *it = cls;
	(void)kind;
	return it->fn(it->arg, key, key ? strlen(key) : 0, value) ? MHD_YES : MHD_NO;
}

void eg_req_headers_iter_n(const struct eg_req *r, bool (*fn)(void *arg, const char *key, size_t key_len, const char *value),
			   void *arg)
{
	if (r->lane) {
		for (size_t i = 0; i < r->lane->n; i++)
			if (!fn(arg, r->lane->name[i], r->lane->name_len[i], r->lane->value[i]))
				return;
	} else if (r->conn) {
		struct iter_n_ctx it = { fn, arg };
		MHD_get_connection_values(r->conn, MHD_HEADER_KIND, iter_n_value, &it);
	}
}

static bool count_value_it(void *cls, const char *key, const char *value)
{
	return count_value(cls, MHD_HEADER_KIND, key, value) == MHD_YES;
}

const char *eg_req_header_dup(const struct eg_req *r, const char *name, bool *dup)
{
	int k = r->hidx ? known_index(name) : -1;
	if (k >= 0) {
		if (dup)
			*dup = r->hidx->count[k] > 1;
		return r->hidx->value[k];
	}
	struct count_ctx c = { .name = name };
	eg_req_headers_iter(r, count_value_it, &c);
	if (dup)
		*dup = c.count > 1;
	return c.first;
}

const char *eg_req_header(const struct eg_req *r, const char *name)
{
	int k = r->hidx ? known_index(name) : -1;
	if (k >= 0)
		return r->hidx->value[k];
	if (r->lane)
		return eg_req_header_dup(r, name, NULL);
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *eg_req_arg(const struct eg_req *r, const char *name, int *count)
{
	struct count_ctx c = { .name = name };
	if (r->conn) /* the lane takes no query: no arguments */
		MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, count_arg, &c);
	if (count)
		*count = c.count;
	/* MHD reports "?a" (no '=') with a NULL value; treat as empty. */
	return c.count && !c.first ? "" : c.first;
}

struct cookie_ctx {
	const char *name;
	char *buf;
	size_t len;
	bool found;
	bool decided; /* the first cookie of that name was seen (perhaps too long) */
};

/* Cookie: a=b; c=d. Parsed here (not by MHD) so the rules are ours: the first cookie
 * of that name wins, values are taken verbatim, surrounding quotes are stripped. */
static void cookie_scan(const char *hdr, struct cookie_ctx *c)
{
	size_t nl = strlen(c->name);
	const char *p = hdr;
	while (*p && !c->found) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t seg = end ? (size_t)(end - p) : strlen(p);
		if (seg > nl && strncmp(p, c->name, nl) == 0 && p[nl] == '=') {
			const char *v = p + nl + 1;
			size_t vl = seg - nl - 1;
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"')
				v++, vl -= 2;
			if (vl < c->len) {
				memcpy(c->buf, v, vl);
				c->buf[vl] = '\0';
				c->found = true;
			}
			c->decided = true;
			return; /* first occurrence decides, even if too long */
		}
		p += seg;
	}
}

const char *eg_cookie_value(const char *header, const char *name, char *buf, size_t len)
{
	struct cookie_ctx c = { .name = name, .buf = buf, .len = len };
	if (header && len)
		cookie_scan(header, &c);
	return c.found ? buf : NULL;
}

static bool cookie_value(void *cls, const char *key, const char *value)
{
	struct cookie_ctx *c = cls;
	if (key && value && strcasecmp(key, "Cookie") == 0)
		cookie_scan(value, c);
	return !c->decided;
}

/* The lane's request, whose Cookie headers are indexed (hidx): how many there are, and the
 * first. The lane's reader took names of tchars only, measured exactly, so its index holds
 * every header strcasecmp would read as "Cookie". -1: walk the headers. */
static int lane_cookies(const struct eg_req *r, const char **first)
{
	if (!r->lane || !r->hidx)
		return -1;
	int k = known_index("Cookie");
	*first = r->hidx->value[k];
	return r->hidx->count[k] > 1 ? -1 : (int)r->hidx->count[k];
}

const char *eg_req_cookie(const struct eg_req *r, const char *name, char *buf, size_t len)
{
	struct cookie_ctx c = { .name = name, .buf = buf, .len = len };
	const char *one;
	int n = lane_cookies(r, &one);
	if (n == 1)
		cookie_scan(one, &c);
	else if (n < 0)
		eg_req_headers_iter(r, cookie_value, &c);
	return c.found ? buf : NULL;
}

struct cookie_count_ctx {
	const char *name;
	int n;
};

static bool cookie_count_value(void *cls, const char *key, const char *value)
{
	struct cookie_count_ctx *c = cls;
	size_t nl = strlen(c->name);
	if (!key || !value || strcasecmp(key, "Cookie") != 0)
		return true;
	for (const char *p = value; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		if (strncmp(p, c->name, nl) == 0 && p[nl] == '=')
			c->n++;
		p += strcspn(p, ";");
	}
	return true;
}

int eg_req_cookie_count(const struct eg_req *r, const char *name)
{
	struct cookie_count_ctx c = { .name = name };
	const char *one;
	int n = lane_cookies(r, &one);
	if (n == 1)
		cookie_count_value(&c, "Cookie", one);
	else if (n < 0)
		eg_req_headers_iter(r, cookie_count_value, &c);
	return c.n;
}

/* --- responses ------------------------------------------------------------------------ */

struct eg_resp_block {
	struct eg_resp_block *next;
	char data[];
};

/* A copy of s (len bytes, NUL added) that lives as long as resp. */
static char *resp_copy(struct eg_resp *resp, const char *s, size_t len)
{
	char *p;
	if (len < sizeof(resp->arena) - resp->arena_used) {
		p = resp->arena + resp->arena_used;
		resp->arena_used += len + 1;
	} else {
		struct eg_resp_block *b = xmalloc(sizeof(*b) + len + 1);
		b->next = resp->heap;
		resp->heap = b;
		p = b->data;
	}
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void eg_resp_header(struct eg_resp *resp, const char *name, const char *value)
{
	if (resp->n_headers == EG_RESP_MAX_HEADERS) {
		log_warn("response header limit reached, dropping %s", name);
		return;
	}
	/* CR/LF in a value would split the header: never emit them. strcspn finds the first
	 * (or the end, the usual case) without a second pass over the copy. */
	size_t clean = strcspn(value, "\r\n"), vlen = clean + strlen(value + clean), nlen = strlen(name);
	char *v = resp_copy(resp, value, vlen);
	for (char *p = v + clean; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	resp->hname[resp->n_headers] = resp_copy(resp, name, nlen);
	resp->hname_len[resp->n_headers] = nlen;
	resp->hvalue_len[resp->n_headers] = vlen;
	resp->hvalue[resp->n_headers++] = v;
}

void eg_resp_header_n(struct eg_resp *resp, const char *name, size_t name_len, const char *value, size_t value_len)
{
	if (resp->n_headers == EG_RESP_MAX_HEADERS) {
		log_warn("response header limit reached, dropping %s", name);
		return;
	}
	resp->hvalue[resp->n_headers] = resp_copy(resp, value, value_len);
	resp->hname[resp->n_headers] = resp_copy(resp, name, name_len);
	resp->hname_len[resp->n_headers] = name_len;
	resp->hvalue_len[resp->n_headers++] = value_len;
}

void eg_resp_body(struct eg_resp *resp, int status, const char *ctype, const char *body)
{
	resp->status = status;
	resp->content_type = ctype;
	resp->body_len = body ? strlen(body) : 0;
	resp->body = resp->body_len ? resp_copy(resp, body, resp->body_len) : "";
}

void eg_resp_text(struct eg_resp *resp, int status, const char *text)
{
	eg_resp_body(resp, status, "text/plain; charset=utf-8", text);
}

void eg_resp_json(struct eg_resp *resp, int status, const char *json)
{
	eg_resp_body(resp, status, "application/json", json);
}

void eg_resp_redirect(struct eg_resp *resp, const char *location)
{
	eg_resp_header(resp, "Location", location);
	eg_resp_body(resp, 302, "text/plain; charset=utf-8", "Redirecting\n");
}

static char *html_escape(const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p; p++)
		n += strchr("<>&\"'", *p) ? 6 : 1;
	char *out = xmalloc(n + 1), *o = out;
	for (const char *p = s; *p; p++) {
		const char *rep = NULL;
		switch (*p) {
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '&': rep = "&amp;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		}
		if (rep)
			o = stpcpy(o, rep);
		else
			*o++ = *p;
	}
	*o = '\0';
	return out;
}

void eg_resp_html_error(struct eg_resp *resp, int status, const char *title, const char *msg)
{
	char *t = html_escape(title), *m = html_escape(msg);
	char *page = xasprintf("<!doctype html><html><head><meta charset=\"utf-8\"><title>%s</title></head>"
			       "<body><h1>%s</h1><p>%s</p></body></html>\n", t, t, m);
	eg_resp_body(resp, status, "text/html; charset=utf-8", page);
	free(page);
	free(t);
	free(m);
}

void eg_resp_free(struct eg_resp *resp)
{
	for (struct eg_resp_block *b = resp->heap, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	resp->heap = NULL;
	resp->arena_used = 0;
	resp->status = 0;
	resp->body = NULL;
	resp->body_len = 0;
	resp->content_type = NULL;
	resp->n_headers = 0;
}

/* --- the access handler ------------------------------------------------------------------ */

static struct eg_admission *admission;

/* Connections the lane handed over (lane.c), by descriptor: libmicrohttpd's connection
 * takes over the lane's eg_conn (on_connection), which stays admitted throughout, so the
 * connection keeps its slot, its peer and its deadline: trickling bytes to the lane and then
 * to libmicrohttpd does not start a second header deadline, and the listener's budget
 * (eg_conn.slots) is not freed and taken again in between. */
static _Atomic(struct eg_conn *) *handed;
static size_t handed_n;
/* Set while a lane thread is inside MHD_add_connection, which asks on_accept (the same
 * thread) again: the lane has already admitted the connection, and asking twice would
 * count it against its own peer's limit. */
static _Thread_local bool handing_over;

/* The end of a connection, on either front: its admission entry, its slot, its memory. */
void eg_http_conn_release(struct eg_conn *c)
{
	eg_admission_close(admission, c);
	if (c->slots)
		atomic_fetch_sub(c->slots, 1);
	free(c->body);
	free(c->raw_target);
	free(c);
}

static struct eg_conn *take_handed(int fd)
{
	return fd >= 0 && (size_t)fd < handed_n ? atomic_exchange(&handed[fd], NULL) : NULL;
}

bool eg_http_hand_over(struct MHD_Daemon *mhd, struct eg_conn *c, const struct sockaddr *sa, socklen_t salen)
{
	int fd = c->fd;
	if (fd < 0 || (size_t)fd >= handed_n) {
		eg_http_conn_release(c);
		close(fd);
		return false;
	}
	/* a connection libmicrohttpd dropped without telling (it had no memory for it) left its
	 * entry here; its descriptor is closed, since this one has the same number */
	struct eg_conn *stale = atomic_exchange(&handed[fd], c);
	if (stale)
		eg_http_conn_release(stale);
	handing_over = true;
	enum MHD_Result ok = MHD_add_connection(mhd, fd, sa, salen);
	handing_over = false;
	if (ok == MHD_YES)
		return true;
	/* libmicrohttpd closed the descriptor; the entry is still ours unless it was taken */
	log_debug("lane: libmicrohttpd did not take a connection: %s", strerror(errno));
	struct eg_conn *mine = c;
	if (atomic_compare_exchange_strong(&handed[fd], &mine, NULL))
		eg_http_conn_release(c);
	return false;
}

/* MHD hands the request-target to this callback before it percent-decodes the path: the
 * only place the target is seen as the proxy sent it (Envoy puts the original one there). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct eg_conn *c = ci ? ci->socket_context : NULL;
	if (c) { /* kept on the connection, like the body: one request at a time */
		free(c->raw_target);
		c->raw_target = xstrdup(uri ? uri : "");
	}
	return NULL; /* *con_cls stays NULL: on_request's first call sees a new request */
}

static bool peer_trusted(const struct eg_config *cfg, const struct sockaddr *sa, uint8_t addr[16], bool *is_unix)
{
	*is_unix = false;
	memset(addr, 0, 16);
	if (!sa)
		return false;
	if (sa->sa_family == AF_UNIX) {
		*is_unix = true; /* only processes that can reach the socket file: nginx by design */
		return true;
	}
	if (eg_addr_from_sockaddr(sa, addr) != 0)
		return false;
	for (size_t i = 0; i < cfg->n_trusted_proxies; i++)
		if (eg_prefix_contains(&cfg->trusted_proxies[i], addr))
			return true;
	return false;
}

bool eg_http_peer(const struct eg_daemon *d, const struct sockaddr *sa, uint8_t addr[16], bool *is_unix)
{
	return peer_trusted(d->cfg, sa, addr, is_unix);
}

/* Answers are reused: the same status, headers and body get the same libmicrohttpd
 * response object, which it reference-counts (and to which it adds Date itself when
 * sending). A cached bearer verdict answers a token with the same identity headers every
 * time, so the usual verdict costs a hash and a compare instead of a response with its
 * header list (three allocations per header). Per thread: no lock on the hot path, and an
 * entry is only ever replaced by the thread that queues it. Answers that set cookies are
 * never kept (they carry session tickets). */
#define RESP_CACHE 64 /* per thread, direct-mapped */
#define RESP_KEY_MAX 2048

struct cached_resp {
	uint64_t hash;
	size_t len;
	char *key;
	struct MHD_Response *mr;
};

static pthread_key_t resp_cache_key;
static pthread_once_t resp_cache_once = PTHREAD_ONCE_INIT;

static void resp_cache_free(void *p)
{
	struct cached_resp *cache = p;
	for (size_t i = 0; i < RESP_CACHE; i++) {
		if (cache[i].mr)
			MHD_destroy_response(cache[i].mr);
		free(cache[i].key);
	}
	free(cache);
}

static void resp_cache_init(void)
{
	pthread_key_create(&resp_cache_key, resp_cache_free);
}

static struct MHD_Response *build_response(const struct eg_resp *resp, bool close, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *mr = MHD_create_response_from_buffer(resp->body_len, (void *)resp->body, mode);
	if (!mr)
		return NULL;
	if (resp->content_type && resp->body_len)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
	MHD_add_response_header(mr, "Cache-Control", "no-store");
	for (size_t i = 0; i < resp->n_headers; i++)
		MHD_add_response_header(mr, resp->hname[i], resp->hvalue[i]);
	/* Only the configured proxies keep connections open: a slot of anyone else is
	 * released as soon as the answer is out. */
	if (close)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
	return mr;
}

static bool key_put(char *key, size_t *n, const void *p, size_t len)
{
	if (len > RESP_KEY_MAX - *n)
		return false;
	memcpy(key + *n, p, len);
	*n += len;
	return true;
}

/* Everything the response is made of, in one buffer; false when it does not fit or must not be kept. */
static bool resp_key(const struct eg_resp *resp, bool close, char *key, size_t *n)
{
	int head[2] = { resp->status, close };
	const char *ct = resp->content_type ? resp->content_type : "";
	bool ok = key_put(key, n, head, sizeof(head)) && key_put(key, n, ct, strlen(ct) + 1) &&
		  key_put(key, n, &resp->body_len, sizeof(resp->body_len)) && key_put(key, n, resp->body, resp->body_len);
	for (size_t i = 0; ok && i < resp->n_headers; i++) {
		if (strcasecmp(resp->hname[i], "Set-Cookie") == 0)
			return false;
		ok = key_put(key, n, resp->hname[i], strlen(resp->hname[i]) + 1) &&
		     key_put(key, n, resp->hvalue[i], strlen(resp->hvalue[i]) + 1);
	}
	return ok;
}

static uint64_t key_hash(const char *key, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, key + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	for (; i < n; i++)
		h = (h ^ (uint8_t)key[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static struct MHD_Response *cached_response(const struct eg_resp *resp, bool close)
{
	char key[RESP_KEY_MAX];
	size_t n = 0;
	if (!resp_key(resp, close, key, &n))
		return NULL;
	pthread_once(&resp_cache_once, resp_cache_init);
	struct cached_resp *cache = pthread_getspecific(resp_cache_key);
	if (!cache) {
		cache = xcalloc(RESP_CACHE, sizeof(*cache));
		pthread_setspecific(resp_cache_key, cache);
	}
	uint64_t h = key_hash(key, n);
	struct cached_resp *e = &cache[h & (RESP_CACHE - 1)];
	if (e->mr && e->hash == h && e->len == n && memcmp(e->key, key, n) == 0)
		return e->mr;
	struct MHD_Response *mr = build_response(resp, close, resp->body_len ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
	if (!mr)
		return NULL;
	if (e->mr)
		MHD_destroy_response(e->mr); /* still queued elsewhere? libmicrohttpd holds its own reference */
	free(e->key);
	*e = (struct cached_resp){ .hash = h, .len = n, .key = xmalloc(n), .mr = mr };
	memcpy(e->key, key, n);
	return mr;
}

static enum MHD_Result queue(struct MHD_Connection *conn, const struct eg_resp *resp, bool close)
{
	struct MHD_Response *mr = cached_response(resp, close);
	if (mr)
		return MHD_queue_response(conn, (unsigned)resp->status, mr);
	mr = build_response(resp, close, resp->body_len ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
	if (!mr)
		return MHD_NO;
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, mr);
	MHD_destroy_response(mr);
	return ret;
}

static void resp_init(struct eg_resp *resp)
{
	/* not the arena: 2 KiB of zeroes per request would be a cost of its own */
	resp->status = 0;
	resp->body = NULL;
	resp->body_len = 0;
	resp->content_type = NULL;
	resp->n_headers = 0;
	resp->arena_used = 0;
	resp->heap = NULL;
}

static void read_body(struct eg_conn *c, const char *data, size_t len)
{
	if (c->too_large)
		return;
	if (c->body_len + len > MAX_BODY) {
		c->too_large = true;
		return;
	}
	c->body = realloc(c->body, c->body_len + len + 1);
	if (!c->body)
		abort();
	memcpy(c->body + c->body_len, data, len);
	c->body_len += len;
	c->body[c->body_len] = '\0';
}

/* pass: where an endpoint tried without the store keeps its state; resp stays empty
 * (status 0) with r->pass->store_needed when it needs the store. */
static void dispatch(struct eg_daemon *d, struct eg_req *r, bool too_large, bool headers_ok,
		     struct eg_resp *resp, const struct endpoint *ep, struct eg_req_pass *pass, bool lane_tried)
{
	if (!headers_ok) {
		/* e.g. a NUL inside a header value: we would judge a prefix of what the proxy sent */
		eg_resp_text(resp, 403, "forbidden: malformed request header\n");
	} else if (too_large) {
		eg_resp_text(resp, 413, "request body too large\n");
	} else if (!ep) {
		eg_resp_text(resp, 404, "not found\n");
	} else if (!method_allowed(ep->methods, r->method)) {
		eg_resp_header(resp, "Allow", ep->methods);
		eg_resp_text(resp, 405, "method not allowed\n");
	} else if (ep->store_always) {
		*pass = (struct eg_req_pass){ .use = EG_STORE_USE_ANY, .store_needed = true };
		r->pass = pass;
		return; /* not tried here: the caller parks the connection or answers busy */
	} else if (ep->store_offload && lane_tried) {
		/* the lane's pass without the store stopped short on these same bytes: straight
		 * to a store worker (the source was checked and counted once, there) */
		*pass = (struct eg_req_pass){ .use = EG_STORE_USE_ANY, .store_needed = true, .admitted = true };
		r->pass = pass;
		return;
	} else if (ep->store_offload) {
		if (eg_verdict_local(d, ep->fn, r, pass, resp) == EG_OFFLOAD_NEEDS_STORE)
			return; /* the caller parks the connection, or decides as in an outage */
	} else {
		ep->fn(d, r, resp);
	}
	if (resp->status == 0)
		eg_resp_text(resp, 500, "internal error\n");
}

/* --- requests that need the store: parked while a store worker decides (offload.h) ---- */

struct eg_parked {
	struct eg_offload_job job;
	struct eg_hdr_index hidx; /* the job's request points here; values stay in MHD's pool */
	struct MHD_Connection *conn;
	const struct endpoint *ep;
	atomic_bool done;
};

/* Parked requests not yet answered (eg_http_stop lets their answers out). */
static atomic_int parked_count;

/* On the worker: the answer is complete; libmicrohttpd calls on_request again. */
static void parked_done(struct eg_offload_job *job)
{
	struct eg_parked *p = job->arg;
	atomic_store_explicit(&p->done, true, memory_order_release);
	MHD_resume_connection(p->conn);
}

/* Parks conn and hands r to a store worker; false when none can take it. The request
 * stays valid while the connection is suspended: libmicrohttpd keeps its headers and
 * URL in the connection's pool until the request is over, the body and raw target are
 * ours (c), the header index is copied. */
static bool park(struct eg_daemon *d, struct MHD_Connection *conn, struct eg_conn *c, const struct eg_req *r,
		 const struct endpoint *ep)
{
	if (!eg_offload_reserve(d->offload))
		return false;
	struct eg_parked *p = xmalloc(sizeof(*p));
	p->job.fn = ep->fn;
	p->job.req = *r;
	p->job.pass = *r->pass;
	resp_init(&p->job.resp);
	p->job.done = parked_done;
	p->job.arg = p;
	/* a verdict waits for a worker at most http.store_queue_wait, then is decided as in an
	 * outage; the login callback and the logouts (store_always) have no such pass (their
	 * busy answer is ep->busy, given only at the front): they run however long they waited */
	p->job.start_by_ns = ep->store_always ? 0 : now_mono_ns() + (uint64_t)d->cfg->http.store_queue_wait_ms * 1000000u;
	if (r->hidx) {
		p->hidx = *r->hidx;
		p->job.req.hidx = &p->hidx;
	}
	p->conn = conn;
	p->ep = ep;
	atomic_init(&p->done, false);
	c->parked = p;
	atomic_fetch_add(&parked_count, 1);
	/* suspended before the worker can see it: its resume must come after */
	MHD_suspend_connection(conn);
	eg_offload_submit(d->offload, &p->job);
	return true;
}

static void parked_free(struct eg_conn *c)
{
	struct eg_parked *p = c->parked;
	if (!p)
		return;
	eg_resp_free(&p->job.resp);
	free(p);
	c->parked = NULL;
	atomic_fetch_sub(&parked_count, 1);
}

/* Resumed: the store worker's answer, queued from this thread (a call after the first). */
static enum MHD_Result answer_parked(struct eg_daemon *d, struct MHD_Connection *conn, struct eg_conn *c)
{
	struct eg_parked *p = c->parked;
	if (!atomic_load_explicit(&p->done, memory_order_acquire))
		return MHD_YES; /* not resumed by the worker: cannot happen, wait for it */
	eg_metric_inc(d->metrics, "edgegate_http_requests_total", "endpoint", p->ep->path, NULL, NULL, 1);
	eg_admission_phase(admission, c, EG_CONN_ANSWER);
	enum MHD_Result ret = queue(conn, &p->job.resp, !c->trusted || c->close_after);
	parked_free(c);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct eg_daemon *d = cls;
	struct eg_conn *c = *con_cls;
	if (c && c->parked)
		return answer_parked(d, conn, c);
	if (!c) {
		/* Headers complete. Answering now would make libmicrohttpd close the connection
		 * (see the top of this file): the answer comes with the next call. */
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		if (!ci || !ci->socket_context)
			return MHD_NO;
		*con_cls = ci->socket_context;
		return MHD_YES;
	}
	if (*upload_data_size) {
		read_body(c, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}

	/* The request is complete: from here on the handler's own timeouts apply. */
	eg_admission_phase(admission, c, EG_CONN_BUSY);
	struct eg_req r = { .conn = conn, .method = method, .url = url, .body = c->body, .body_len = c->body_len,
			    .peer_trusted = c->trusted, .peer_unix = c->is_unix,
			    .raw_target = c->raw_target, .proxy = d->cfg->proxy };
	memcpy(r.peer_addr, c->addr, 16);
	struct eg_hdr_index hidx = { 0 };
	bool headers_ok = index_headers(conn, method, version, &hidx);
	r.hidx = &hidx;

	struct eg_resp resp;
	resp_init(&resp);
	const struct endpoint *ep = find_endpoint(url);
	struct eg_req_pass pass;
	dispatch(d, &r, c->too_large, headers_ok, &resp, ep, &pass, c->lane_tried);
	c->lane_tried = false; /* the first request only */
	if (resp.status == 0 && r.pass && r.pass->store_needed) {
		/* Needs the store: parked for a store worker, the answer comes with a later
		 * call. No worker free: decided now as during a store outage. */
		if (park(d, conn, c, &r, ep))
			return MHD_YES;
		if (ep->store_always && ep->busy) {
			eg_metric_inc(d->metrics, "edgegate_store_workers_total", "result", "saturated", NULL, NULL, 1);
			ep->busy(d, &r, &resp);
		}
		else if (ep->store_always)
			ep->fn(d, &r, &resp); /* no busy answer given: as before the workers */
		else
			eg_verdict_store_down(d, ep->fn, &r, r.pass, &resp);
		if (resp.status == 0)
			eg_resp_text(&resp, 500, "internal error\n");
	}
	eg_metric_inc(d->metrics, "edgegate_http_requests_total", "endpoint", ep ? ep->path : "other", NULL, NULL, 1);
	if (!headers_ok)
		eg_metric_inc(d->metrics, "edgegate_http_requests_rejected_total", "reason", "malformed_header", NULL,
			      NULL, 1);
	eg_admission_phase(admission, c, EG_CONN_ANSWER);
	enum MHD_Result ret = queue(conn, &resp, !c->trusted || c->close_after);
	eg_resp_free(&resp);
	return ret;
}

/* The verdict lane's request (lane.c): the same endpoint table, handler and metrics as
 * on_request, on the headers lane_parse.c read, tried without the store exactly as
 * libmicrohttpd's first pass (offload.h). EG_LANE_NEEDS_STORE (resp empty) when the answer
 * needs the store: libmicrohttpd takes the connection over and parks that request for a
 * store worker (a lane thread never waits for the store). */
enum eg_lane_verdict eg_http_lane_answer(struct eg_daemon *d, struct eg_conn *c, const struct eg_lane_msg *m,
					 struct eg_resp *resp)
{
	struct eg_req r = { .method = m->method, .url = m->target, .raw_target = m->target, .lane = m,
			    .peer_trusted = c->trusted, .peer_unix = c->is_unix, .proxy = d->cfg->proxy };
	memcpy(r.peer_addr, c->addr, 16);
	const struct endpoint *ep = auth_endpoint && strcmp(r.url, "/auth") == 0 ? auth_endpoint : find_endpoint(r.url);
	if (ep && !ep->store_offload)
		return EG_LANE_HANDOVER; /* a handler that is not tried without the store first */
	struct eg_hdr_index hidx = { 0 };
	for (size_t i = 0; i < m->n; i++) {
		int k = known_index_n(m->name[i], m->name_len[i]);
		if (k >= 0 && hidx.count[k]++ == 0)
			hidx.value[k] = m->value[i];
	}
	r.hidx = &hidx;
	eg_admission_phase(admission, c, EG_CONN_BUSY);
	resp_init(resp);
	struct eg_req_pass pass;
	dispatch(d, &r, false, true, resp, ep, &pass, false);
	if (resp->status == 0 && r.pass && r.pass->store_needed) {
		eg_resp_free(resp);
		/* a pass that stopped short has admitted the source (verdict.c): else a handover
		 * without the mark, and libmicrohttpd tries it again */
		return r.pass->admitted ? EG_LANE_NEEDS_STORE : EG_LANE_HANDOVER;
	}
	/* endpoint paths are literals (eg_http_register) */
	static __thread struct eg_metric_site requests;
	eg_metric_inc_site(&requests, d->metrics, "edgegate_http_requests_total", "endpoint", ep ? ep->path : "other",
			   NULL, NULL, 1);
	return EG_LANE_ANSWERED; /* the lane moves the deadline on: idle once the answer is out */
}

/* The request is over (answered, or the connection failed): the next one starts clean, and
 * a kept-alive connection may idle for idle_timeout. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct eg_conn *c = *con_cls;
	if (!c)
		return;
	parked_free(c); /* answered, or the daemon stopped before it could be */
	free(c->body);
	c->body = NULL;
	c->body_len = 0;
	c->too_large = false;
	*con_cls = NULL;
	eg_admission_phase(admission, c, EG_CONN_IDLE);
}

/* Other peers are refused while only the proxies' reserve is left (admission.c). */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct eg_daemon *d = cls;
	if (handing_over)
		return MHD_YES; /* the lane admitted it (eg_http_hand_over) */
	uint8_t a[16];
	bool is_unix;
	bool trusted = peer_trusted(d->cfg, addr, a, &is_unix);
	return eg_admission_accept(admission, trusted, a) ? MHD_YES : MHD_NO;
}

/* Connection set-up and tear-down: the peer is classified once per connection, not per
 * request. Counts accepted connections: with nginx keep-alive working, far fewer than requests. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct eg_daemon *d = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fi = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		int fd = fi ? fi->connect_fd : -1;
		struct eg_conn *c = take_handed(fd);
		if (!c) { /* accepted by libmicrohttpd itself */
			c = xcalloc(1, sizeof(*c));
			const union MHD_ConnectionInfo *ai =
				MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
			c->trusted = peer_trusted(d->cfg, ai ? ai->client_addr : NULL, c->addr, &c->is_unix);
			c->fd = fd;
			eg_admission_open(admission, c);
		}
		*socket_context = c;
		if (!c->counted) /* once per connection, whichever front answered first */
			eg_metric_inc(d->metrics, "edgegate_http_connections_total", NULL, NULL, NULL, NULL, 1);
		c->counted = true;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
		struct eg_conn *c = *socket_context;
		parked_free(c);
		eg_http_conn_release(c);
		*socket_context = NULL;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_debug("microhttpd: %s", msg);
}

/* The unix sockets this process bound (by listen index), removed on stop if still ours. */
static ino_t unix_inode[8];
/* The verdict lanes (http.lane), by listen index. */
static struct eg_lane *lanes[8];
/* Each lane listener's open connections, on either front: one budget of max_connections
 * (eg_conn.slots). Outside the lane, which stops before libmicrohttpd releases its last
 * connections. */
static _Atomic unsigned lane_slots[8];

/* 0660: only the daemon's user and listen_group (nginx's) may connect, because any peer
 * on this socket is believed as the proxy. */
static int unix_listen(const char *path, gid_t group)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (eg_unix_claim(path) != 0) { /* a live one is another daemon's; a stale one is removed */
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || chmod(path, 0660) != 0 ||
	    (group != (gid_t)-1 && chown(path, (uid_t)-1, group) != 0) || listen(fd, 1024) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* The lane accepts on a TCP listener itself: bound as libmicrohttpd binds one with
 * MHD_OPTION_LISTENING_ADDRESS_REUSE and without dual stack (SO_REUSEADDR and SO_REUSEPORT;
 * an IPv6 address takes IPv6 only; its default backlog). */
static int tcp_listen(const struct sockaddr_storage *ss)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    (ss->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
	    bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Enough descriptors for every slot of every listener: running out of them makes
 * libmicrohttpd stop accepting, the outage the limits are there to prevent. Raises the
 * soft limit to the hard one; if that is still short, the slots are cut to fit. */
static unsigned fit_fd_limit(unsigned want_per_listener, size_t listeners)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return want_per_listener;
	rlim_t need = (rlim_t)want_per_listener * listeners + 256; /* + stores, BPF maps, clients */
	if (rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur >= need)
		return want_per_listener;
	unsigned fit = rl.rlim_cur > 256 + 16 * listeners ? (unsigned)((rl.rlim_cur - 256) / listeners) : 16;
	log_warn("http.max_connections %u per listener needs %llu file descriptors, the limit is %llu: using %u "
		 "(raise LimitNOFILE / ulimit -n)", want_per_listener, (unsigned long long)need,
		 (unsigned long long)rl.rlim_cur, fit);
	return fit;
}

int eg_http_start(struct eg_daemon *d)
{
	auth_endpoint = find_endpoint("/auth");
	const struct eg_config *cfg = d->cfg;
	const struct eg_http_config *hc = &cfg->http;
	unsigned threads = cfg->threads > 0 ? (unsigned)cfg->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	/* One lane thread takes every verdict its connections bring per wake-up: with fewer
	 * threads each epoll_wait returns more of them, and a thread serves 100,000+ cached
	 * verdicts a second, several nginx workers' worth (docs/bench.md, lane threads). */
	unsigned lane_threads = cfg->http.lane_threads ? cfg->http.lane_threads
						       : (unsigned)(sysconf(_SC_NPROCESSORS_ONLN) / 4);
	if (lane_threads < 1)
		lane_threads = 1;
	if (threads < 1)
		threads = 1;
	unsigned max_conns = fit_fd_limit(hc->max_connections, cfg->n_listen);
	struct eg_http_config eff = *hc;
	if (max_conns < hc->max_connections) {
		eff.max_connections = max_conns;
		if (eff.reserved_for_proxies >= max_conns)
			eff.reserved_for_proxies = max_conns / 4;
	}
	if (!admission)
		admission = eg_admission_new(&eff, cfg->gate.ipv6_group_plen, d->metrics);
	struct rlimit nofile;
	if (!handed && getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
		handed_n = nofile.rlim_cur < (1u << 20) ? (size_t)nofile.rlim_cur : (1u << 20);
		handed = xcalloc(handed_n, sizeof(*handed));
	}
	/* before the listeners (and before privileges are dropped: every thread is checked) */
	if (!d->offload && !(d->offload = eg_offload_new(d, hc->store_workers, hc->store_queue)))
		return -1;
	for (size_t i = 0; i < cfg->n_listen && i < sizeof(d->mhd) / sizeof(d->mhd[0]); i++) {
		const struct eg_listen *l = &cfg->listen[i];
		/* MHD_ALLOW_SUSPEND_RESUME on a lane's daemon too: what it is handed may be parked */
		unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
				 MHD_ALLOW_SUSPEND_RESUME;
		/* The lane owns the listener and hands libmicrohttpd what it does not answer. */
		bool lane = hc->lane && i < sizeof(lanes) / sizeof(lanes[0]);
		struct MHD_OptionItem opts[13];
		int n = 0;
		int fd = -1;
		if (l->is_unix) {
			gid_t group = (gid_t)-1;
			if (cfg->listen_group && eg_group_id(cfg->listen_group, &group) != 0) {
				log_err("listen_group: no group \"%s\"", cfg->listen_group);
				return -1;
			}
			fd = unix_listen(l->path, group);
			if (fd < 0) {
				log_err("listen %s: %s%s", l->text, strerror(errno),
					errno == EADDRINUSE ? " (another edgegated serves it; not taking it over)" : "");
				return -1;
			}
			unix_inode[i] = eg_unix_inode(l->path);
		} else if (lane) {
			fd = tcp_listen(&l->ss);
			if (fd < 0) {
				log_err("listen %s: %s", l->text, strerror(errno));
				return -1;
			}
		} else {
			if (l->ss.ss_family == AF_INET6)
				flags |= MHD_USE_IPv6;
			opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, (void *)&l->ss };
			opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL };
		}
		if (lane)
			flags |= MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
		else if (l->is_unix)
			opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, fd, NULL };
		if (threads > 1)
			opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, threads, NULL };
		/* The hard cap; admission.c keeps other peers below it by the proxies' reserve. With
		 * the lane the cap is the lane's (one budget for both fronts, lane.c): libmicrohttpd
		 * splits its limit over its threads and picks one by descriptor, so each may need
		 * room for all of them. */
		unsigned mhd_limit = lane ? eff.max_connections * threads : eff.max_connections;
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, mhd_limit, NULL };
		/* libmicrohttpd's own timeout restarts with every byte: a backstop only; the
		 * deadlines that hold are admission.c's. */
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)eff.idle_timeout_s, NULL };
		/* Room for large Cookie/Authorization headers (MHD answers 431 past this), but no
		 * more: MHD 0.9.75 zeroes the whole pool before every keep-alive request. The
		 * request and the answer's headers share it, and a header block that arrives in
		 * pieces needs about twice its size while the read buffer grows: 48 KiB answered
		 * 431 to a 30 KB Cookie sent in 1.5 KB pieces (tests/integration/http_admission),
		 * 40 KiB closed the connection on the largest request nginx's default buffers
		 * pass with a 4.6 KB groups answer (bearer_nginx): a 500 through auth_request.
		 * Below 64 KiB the saving is ~0.15 µs a verdict (docs/bench.md): not worth it. */
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT, 64 * 1024, NULL };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, NULL };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
		struct MHD_Daemon *md = MHD_start_daemon(flags, 0, on_accept, d, on_request, d,
							 MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
							 MHD_OPTION_NOTIFY_CONNECTION, on_connection, d,
							 MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
		if (!md) {
			log_err("listen %s: cannot start HTTP server (address in use or not permitted?)", l->text);
			if (fd >= 0)
				close(fd);
			return -1;
		}
		d->mhd[d->n_mhd++] = md;
		atomic_store(&lane_slots[i], 0);
		if (lane && !(lanes[i] = eg_lane_start(d, fd, md, admission, lane_threads, &lane_slots[i], eff.max_connections))) {
			log_err("listen %s: cannot start the verdict lane", l->text);
			return -1;
		}
		log_info("listening on %s (%u threads, %u connections, %u of them reserved for the proxies%s)", l->text,
			 threads, eff.max_connections, eff.reserved_for_proxies, lane ? "; verdict lane" : "");
	}
	return 0;
}

void eg_http_stop(struct eg_daemon *d)
{
	/* the lanes first: they hand connections to libmicrohttpd, which may park them */
	for (size_t i = 0; i < sizeof(lanes) / sizeof(lanes[0]); i++) {
		eg_lane_stop(lanes[i]);
		lanes[i] = NULL;
	}
	/* Parked connections must be resumed before libmicrohttpd stops: the workers answer
	 * every queued request first; meanwhile new ones are decided as in an outage. */
	eg_offload_stop(d->offload);
	/* every parked connection is resumed now: give the listeners a moment to send those
	 * answers (bounded: a second at most) */
	for (int i = 0; i < 100 && atomic_load(&parked_count) > 0; i++)
		usleep(10000);
	for (int i = 0; i < d->n_mhd; i++) {
		MHD_stop_daemon(d->mhd[i]);
		d->mhd[i] = NULL;
	}
	d->n_mhd = 0;
	eg_offload_free(d->offload); /* no listener left to ask it */
	d->offload = NULL;
	for (size_t i = 0; i < d->cfg->n_listen && i < sizeof(unix_inode) / sizeof(unix_inode[0]); i++)
		if (d->cfg->listen[i].is_unix)
			eg_unix_release(d->cfg->listen[i].path, unix_inode[i]);
	/* handed over but never set up (libmicrohttpd stopped first): still admitted */
	for (size_t fd = 0; fd < handed_n; fd++) {
		struct eg_conn *c = take_handed((int)fd);
		if (c)
			eg_http_conn_release(c);
	}
	eg_admission_free(admission);
	admission = NULL;
	free((void *)handed);
	handed = NULL;
	handed_n = 0;
}
