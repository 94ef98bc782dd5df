/* ctl_jose.c - `edgegatectl jws verify` and `edgegatectl jwt verify`: the daemon's
 * own verifier, offline, for debugging tokens and key sets.
 * Exit: 0 valid, 1 invalid or failure (reason on stderr), 2 usage error. */
#include "ctl.h"
#include "config.h"
#include "jose.h"
#include "jwks.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN_MAX (64 * 1024)
#define MAX_LIST 16

struct jose_args {
	const char *jwks, *jwks_url, *alg, *leeway, *token;
	const char *issuers[MAX_LIST], *audiences[MAX_LIST];
	size_t n_iss, n_aud;
};

static int usage(const char *cmd)
{
	if (strcmp(cmd, "jws") == 0)
		fprintf(stderr, "usage: edgegatectl jws verify --jwks FILE [--alg ALG[,ALG...]] [TOKEN|-]\n");
	else
		fprintf(stderr, "usage: edgegatectl jwt verify --jwks FILE|--jwks-url URL [--issuer I] "
				"[--audience A] [--leeway DUR] [--alg ALG[,ALG...]] [TOKEN|-]\n");
	return 2;
}

/* "--name VALUE" or "--name=VALUE"; returns the value and advances *i, or NULL. */
static const char *optval(int argc, char **argv, int *i, const char *name, bool *bad)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*bad = true;
		return NULL;
	}
	return argv[++*i];
}

static int parse_args(int argc, char **argv, bool jwt, struct jose_args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	if (argc < 2 || strcmp(argv[1], "verify") != 0)
		return -1;
	for (i = 2; i < argc; i++) {
		bool bad = false;
		const char *v;

		if ((v = optval(argc, argv, &i, "--jwks", &bad)))
			a->jwks = v;
		else if (jwt && (v = optval(argc, argv, &i, "--jwks-url", &bad)))
			a->jwks_url = v;
		else if ((v = optval(argc, argv, &i, "--alg", &bad)))
			a->alg = v;
		else if (jwt && (v = optval(argc, argv, &i, "--issuer", &bad))) {
			if (a->n_iss == MAX_LIST)
				return -1;
			a->issuers[a->n_iss++] = v;
		} else if (jwt && (v = optval(argc, argv, &i, "--audience", &bad))) {
			if (a->n_aud == MAX_LIST)
				return -1;
			a->audiences[a->n_aud++] = v;
		} else if (jwt && (v = optval(argc, argv, &i, "--leeway", &bad)))
			a->leeway = v;
		else if (bad)
			return -1;
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
			return -1; /* unknown option */
		else if (a->token)
			return -1; /* one token only */
		else
			a->token = argv[i];
		if (bad)
			return -1;
	}
	if (jwt ? (!a->jwks == !a->jwks_url) : !a->jwks)
		return -1;
	return 0;
}

/* A comma-separated alg list into a set; -1 on an unknown name. */
static int parse_algs(const char *s, eg_algset *out)
{
	char *copy, *tok, *save = NULL;
	int rc = 0;

	*out = 0;
	if (!s) {
		*out = EG_ALGSET_ALL;
		return 0;
	}
	copy = xstrdup(s);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		enum eg_alg alg = eg_alg_from_name(tok);
		if (alg == EG_ALG_NONE) {
			fprintf(stderr, "unknown or unsupported algorithm: %s\n", tok);
			rc = -1;
			break;
		}
		*out |= 1u << alg;
	}
	free(copy);
	return rc || !*out ? -1 : 0;
}

/* The token from argv or stdin, surrounding whitespace trimmed. Caller frees. */
static char *get_token(const char *arg, size_t *len)
{
	char *t;
	size_t n = 0, s = 0;

	if (arg && strcmp(arg, "-") != 0) {
		t = xstrdup(arg);
		n = strlen(t);
	} else {
		t = xmalloc(TOKEN_MAX + 1);
		for (;;) {
			ssize_t r = read(STDIN_FILENO, t + n, TOKEN_MAX - n);
			if (r < 0) {
				free(t);
				return NULL;
			}
			if (r == 0)
				break;
			n += (size_t)r;
			if (n == TOKEN_MAX) {
				free(t);
				fprintf(stderr, "token on stdin is larger than %d bytes\n", TOKEN_MAX);
				return NULL;
			}
		}
		t[n] = '\0';
	}
	while (n && isspace((unsigned char)t[n - 1]))
		t[--n] = '\0';
	while (s < n && isspace((unsigned char)t[s]))
		s++;
	memmove(t, t + s, n - s + 1);
	*len = n - s;
	if (!*len) {
		free(t);
		fprintf(stderr, "no token given\n");
		return NULL;
	}
	return t;
}

static struct eg_jwks *load_jwks_file(const char *path)
{
	char err[256], warn[512];
	size_t len;
	char *body = read_file(path, 1 << 20, &len);
	struct eg_jwks *ks;

	if (!body) {
		fprintf(stderr, "cannot read %s: %m\n", path);
		return NULL;
	}
	ks = eg_jwks_parse(body, len, err, sizeof(err), warn, sizeof(warn));
	free(body);
	if (!ks) {
		fprintf(stderr, "%s: %s\n", path, err);
		return NULL;
	}
	if (warn[0])
		fprintf(stderr, "%s: skipped keys: %s\n", path, warn);
	return ks;
}

static void print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
	if (s)
		printf("%s\n", s);
	free(s);
}

static void print_payload(const struct eg_jws *j)
{
	json_t *any;

	if (j->payload) {
		print_json(j->payload);
		return;
	}
	any = json_loadb((const char *)j->raw_payload, j->raw_payload_len,
			 JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	if (any) {
		print_json(any);
		json_decref(any);
		return;
	}
	fwrite(j->raw_payload, 1, j->raw_payload_len, stdout);
	if (j->raw_payload_len && j->raw_payload[j->raw_payload_len - 1] != '\n')
		putchar('\n');
}

int ctl_jws(const struct ctl_opts *o, int argc, char **argv)
{
	struct jose_args a;
	struct eg_jwks *ks;
	struct eg_jws j;
	enum eg_jose_err e;
	eg_algset algs;
	size_t len;
	char *tok;

	if (parse_args(argc, argv, false, &a) || parse_algs(a.alg, &algs))
		return usage("jws");
	tok = get_token(a.token, &len);
	if (!tok)
		return 1;
	ks = load_jwks_file(a.jwks);
	if (!ks) {
		free(tok);
		return 1;
	}
	e = eg_jws_verify(tok, len, ks, algs, false, &j);
	free(tok);
	eg_jwks_unref(ks);
	if (e != EG_JOSE_OK) {
		fprintf(stderr, "invalid: %s\n", eg_jose_err_name(e));
		return 1;
	}
	print_payload(&j);
	eg_jws_clear(&j);
	return 0;
}

int ctl_jwt(const struct ctl_opts *o, int argc, char **argv)
{
	struct eg_keysource_opts so = { 0 };
	struct eg_jwt_expect x = { 0 };
	struct eg_keysource *src;
	struct eg_jwks *ks;
	struct jose_args a;
	struct eg_jws j;
	enum eg_jose_err e;
	eg_algset algs;
	const char *why = NULL;
	char err[256];
	size_t len;
	char *tok;

	if (parse_args(argc, argv, true, &a) || parse_algs(a.alg, &algs))
		return usage("jwt");
	if (a.leeway && eg_parse_duration(a.leeway, &x.leeway_s) != 0) {
		fprintf(stderr, "--leeway: expected a duration such as 30s or 2m\n");
		return 2;
	}
	x.issuers = a.issuers;
	x.n_issuers = a.n_iss;
	x.audiences = a.audiences;
	x.n_audiences = a.n_aud;
	x.require_exp = true;

	tok = get_token(a.token, &len);
	if (!tok)
		return 1;
	so.file = a.jwks;
	so.url = a.jwks_url;
	src = eg_keysource_new(&so, err, sizeof(err));
	if (!src) {
		fprintf(stderr, "%s\n", err);
		free(tok);
		return 1;
	}
	ks = eg_keysource_get(src);
	if (eg_jwks_count(ks) == 0) {
		fprintf(stderr, "no usable keys in %s\n", a.jwks ? a.jwks : a.jwks_url);
		eg_jwks_unref(ks);
		eg_keysource_free(src);
		free(tok);
		return 1;
	}
	e = eg_jws_verify(tok, len, ks, algs, true, &j);
	free(tok);
	eg_jwks_unref(ks);
	eg_keysource_free(src);
	if (e == EG_JOSE_OK) {
		e = eg_jwt_check_claims(j.payload, &x, now_realtime_s(), NULL, &why);
		if (e != EG_JOSE_OK) {
			fprintf(stderr, "invalid: %s (%s)\n", eg_jose_err_name(e), why ? why : "claims");
			eg_jws_clear(&j);
			return 1;
		}
	} else {
		fprintf(stderr, "invalid: %s\n", eg_jose_err_name(e));
		return 1;
	}
	print_json(j.payload);
	eg_jws_clear(&j);
	return 0;
}
