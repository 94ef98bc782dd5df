/* loopback.c - see loopback.h. */
#include "loopback.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool eg_host_is_loopback(const char *host)
{
	char buf[INET6_ADDRSTRLEN + 2];
	struct in_addr a4;
	struct in6_addr a6;
	size_t n;

	if (!host || !*host)
		return false;
	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	n = strlen(host);
	if (n < 3 || host[0] != '[' || host[n - 1] != ']' || n - 2 >= sizeof(buf))
		return false;
	memcpy(buf, host + 1, n - 2);
	buf[n - 2] = '\0';
	if (inet_pton(AF_INET6, buf, &a6) != 1)
		return false; /* also refuses a zone id ("%eth0") */
	if (IN6_IS_ADDR_LOOPBACK(&a6))
		return true;
	return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

/* scheme and host of url, lower-case scheme; 0 ok. Caller curl_free()s both. */
static int url_parts(const char *url, char **scheme, char **host)
{
	CURLU *u = curl_url();
	int rc = -1;

	*scheme = *host = NULL;
	if (u && url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK)
		rc = 0;
	curl_url_cleanup(u);
	if (rc) {
		curl_free(*scheme);
		curl_free(*host);
		*scheme = *host = NULL;
	}
	return rc;
}

bool eg_url_is_loopback(const char *url)
{
	char *scheme, *host;
	bool r = false;

	if (url_parts(url, &scheme, &host) == 0)
		r = (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0) &&
		    eg_host_is_loopback(host);
	curl_free(scheme);
	curl_free(host);
	return r;
}

int eg_url_https_or_loopback(const char *url, bool *plain_http)
{
	char *scheme, *host;
	int rc = -1;
	bool http = false;

	if (url_parts(url, &scheme, &host) == 0) {
		if (strcasecmp(scheme, "https") == 0)
			rc = 0;
		else if (strcasecmp(scheme, "http") == 0 && eg_host_is_loopback(host))
			rc = 0, http = true;
	}
	curl_free(scheme);
	curl_free(host);
	if (rc == 0 && plain_http)
		*plain_http = http;
	return rc;
}
