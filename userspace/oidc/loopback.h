/* loopback.h - "is this URL on this host?", the one check behind every rule that
 * allows plain http only to loopback (discovery, the OP's endpoints, jwks_url, a
 * demo public_url without Secure cookies).
 *
 * The URL is parsed with libcurl's URL API, the same parser that later fetches
 * it, and the host must then be an address literal that inet_pton reads as
 * loopback (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104) or exactly the name
 * "localhost" (libcurl and browsers resolve it to loopback without asking DNS,
 * RFC 6761 6.3). Never a string prefix: "127.evil.example" is a remote host. */
#ifndef EG_LOOPBACK_H
#define EG_LOOPBACK_H

#include <stdbool.h>

/* host as libcurl returns it (IPv6 in brackets, an optional zone id refused). */
bool eg_host_is_loopback(const char *host);

/* The URL parses (http or https) and its host is loopback. */
bool eg_url_is_loopback(const char *url);

/* A URL we may fetch or send users to: https anywhere, http only to loopback.
 * 0 ok (*plain_http says which, may be NULL), -1 otherwise. */
int eg_url_https_or_loopback(const char *url, bool *plain_http);

#endif
