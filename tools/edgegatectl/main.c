/* edgegatectl - the operator's CLI: talks to edgegated's admin socket, and reads the
 * pinned BPF maps directly when the daemon is down.
 *
 *   edgegatectl [--config FILE | --admin-socket PATH] [--json] COMMAND ...
 * Exit codes: 0 success, 1 failure, 2 usage error. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "config.h"
#include "ctl.h"
#include "ctl_gate.h"

#define DEFAULT_CONFIG "/etc/edgegate/edgegate.json"
#define DEFAULT_ADMIN "/run/edgegate/admin.sock"
#define DEFAULT_PIN_ROOT "/sys/fs/bpf/edgegate"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: edgegatectl [--config FILE | --admin-socket PATH] [--json] COMMAND ...\n"
		"\n"
		"  status                                 daemon, gate and store state\n"
		"  stats [--json]                         XDP verdict counters per reason\n"
		"  deny add|del|list [CIDR] [--ttl DUR] [--reason TEXT]\n"
		"  allow add|del|list [CIDR] [--ttl DUR] [--reason TEXT]\n"
		"  deny|allow load FILE [--ttl DUR] [--reason CATEGORY]   bulk load (daemon stopped)\n"
		"  sessions [--sub SUB] [--json]          active login sessions\n"
		"  revoke --session ID | --sub SUB | --sid SID [--reason TEXT]   exit 1 when none matched\n"
		"  bans [list] | bans del PREFIX          sources banned for failed verdicts\n"
		"  flows [--session ID]                   tracked session flows, time-to-revoke\n"
		"  jws verify --jwks FILE [--alg ALG] [TOKEN|-]\n"
		"  jwt verify --jwks FILE|--jwks-url URL [--issuer I] [--audience A] [--leeway DUR] [TOKEN|-]\n"
		"\n"
		"The daemon is found through --admin-socket, or the admin_socket of --config\n"
		"(default " DEFAULT_CONFIG "). Exit: 0 ok, 1 failure, 2 usage error.\n");
}

json_t *ctl_admin(const struct ctl_opts *o, json_t *req)
{
	char err[512];
	json_t *resp = eg_admin_call(o->admin_socket, req, err, sizeof(err));
	if (!resp) {
		fprintf(stderr, "edgegatectl: %s\n", err);
		json_decref(req);
		return NULL;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		const char *e = json_string_value(json_object_get(resp, "error"));
		const char *cmd = json_string_value(json_object_get(req, "cmd"));
		/* The daemon registers a command only with the part that serves it: say which. */
		if (e && cmd && strcmp(e, "unknown command") == 0)
			fprintf(stderr, "edgegatectl: this daemon does not serve \"%s\" (%s)\n", cmd,
				!strncmp(cmd, "deny", 4) || !strncmp(cmd, "allow", 5) || !strcmp(cmd, "stats")
					? "the XDP gate is not loaded: no gate.interfaces, or see status"
					: !strcmp(cmd, "sessions") || !strcmp(cmd, "revoke")
						  ? "no oidc section in its config: no login sessions"
						  : "another version of edgegated?");
		else
			fprintf(stderr, "edgegatectl: %s\n", e ? e : "the daemon refused the command");
		json_decref(resp);
		json_decref(req);
		return NULL;
	}
	json_decref(req);
	return resp;
}

bool ctl_daemon_reachable(const struct ctl_opts *o)
{
	return o->admin_socket && access(o->admin_socket, W_OK) == 0;
}

static void print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	puts(s);
	free(s);
}

int ctl_status(const struct ctl_opts *o, int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--json") != 0) {
		usage(stderr);
		return 2;
	}
	bool json = o->json || argc > 1;
	json_t *st = NULL;
	if (ctl_daemon_reachable(o))
		st = ctl_admin(o, json_pack("{s:s}", "cmd", "status"));
	if (!st) {
		/* The daemon is down: say so, and report what the kernel still enforces. */
		st = json_pack("{s:b,s:s}", "daemon", 0, "admin_socket", o->admin_socket);
		json_t *gate = json_object();
		if (ctl_gate_status(o, gate) == 0)
			json_object_set(st, "gate", gate);
		json_decref(gate);
		if (json)
			print_json(st);
		else {
			printf("daemon: not running (admin socket %s)\n", o->admin_socket);
			json_t *g = json_object_get(st, "gate");
			if (g) {
				char *s = json_dumps(g, JSON_COMPACT | JSON_SORT_KEYS);
				printf("gate (pinned maps): %s\n", s);
				free(s);
			} else {
				printf("gate: no pinned maps under %s\n", o->pin_root);
			}
		}
		json_decref(st);
		return 1;
	}
	json_object_del(st, "ok");
	json_t *abuse = ctl_admin(o, json_pack("{s:s}", "cmd", "abuse"));
	if (abuse) {
		json_object_del(abuse, "ok");
		json_object_set_new(st, "abuse", abuse);
	}
	if (json) {
		print_json(st);
	} else {
		const char *k;
		json_t *v;
		json_object_foreach(st, k, v) {
			char *s = json_is_string(v) ? strdup(json_string_value(v)) : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
			printf("%-12s %s\n", k, s);
			free(s);
		}
	}
	json_decref(st);
	return 0;
}

int ctl_sessions(const struct ctl_opts *o, int argc, char **argv)
{
	const char *sub = NULL;
	bool json = o->json;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--sub") == 0 && i + 1 < argc)
			sub = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			json = true;
		else {
			usage(stderr);
			return 2;
		}
	}
	json_t *req = json_pack("{s:s}", "cmd", "sessions");
	if (sub)
		json_object_set_new(req, "sub", json_string(sub));
	json_t *resp = ctl_admin(o, req);
	if (!resp)
		return 1;
	json_t *list = json_object_get(resp, "sessions");
	if (json) {
		print_json(list ? list : resp);
	} else {
		printf("%-64s  %-24s  %-24s  %s\n", "SESSION", "SUB", "SID", "EXPIRES");
		size_t i;
		json_t *s;
		json_array_foreach(list, i, s) {
			const char *id = json_string_value(json_object_get(s, "session_id"));
			const char *su = json_string_value(json_object_get(s, "sub"));
			const char *sid = json_string_value(json_object_get(s, "sid"));
			json_int_t ex = json_integer_value(json_object_get(s, "expires"));
			printf("%-64s  %-24s  %-24s  %lld\n", id ? id : "-", su ? su : "-", sid ? sid : "-", (long long)ex);
		}
	}
	json_decref(resp);
	return 0;
}

int ctl_revoke(const struct ctl_opts *o, int argc, char **argv)
{
	json_t *req = json_pack("{s:s}", "cmd", "revoke");
	int given = 0;
	for (int i = 1; i < argc; i++) {
		const char *key = NULL;
		if (strcmp(argv[i], "--session") == 0)
			key = "session";
		else if (strcmp(argv[i], "--sub") == 0)
			key = "sub";
		else if (strcmp(argv[i], "--sid") == 0)
			key = "sid";
		else if (strcmp(argv[i], "--reason") == 0)
			key = "reason";
		if (!key || i + 1 >= argc) {
			json_decref(req);
			usage(stderr);
			return 2;
		}
		json_object_set_new(req, key, json_string(argv[++i]));
		given += strcmp(key, "reason") != 0;
	}
	if (given != 1) {
		fprintf(stderr, "edgegatectl: revoke needs exactly one of --session, --sub, --sid\n");
		json_decref(req);
		return 2;
	}
	json_t *resp = ctl_admin(o, req);
	if (!resp)
		return 1;
	json_int_t n = json_integer_value(json_object_get(resp, "revoked"));
	if (o->json)
		print_json(resp);
	else
		printf("revoked %lld session%s\n", (long long)n, n == 1 ? "" : "s");
	const char *warn = json_string_value(json_object_get(resp, "warning"));
	if (warn && !o->json)
		fprintf(stderr, "edgegatectl: warning: %s\n", warn);
	json_decref(resp);
	return n > 0 ? 0 : 1;
}

/* bans [list] | bans del PREFIX: the abuse controller's bans (kernel + userspace). */
static int ctl_bans(const struct ctl_opts *o, int argc, char **argv)
{
	json_t *req;
	if (argc == 1 || (argc == 2 && strcmp(argv[1], "list") == 0))
		req = json_pack("{s:s}", "cmd", "bans");
	else if (argc == 3 && strcmp(argv[1], "del") == 0)
		req = json_pack("{s:s,s:s}", "cmd", "ban.del", "prefix", argv[2]);
	else {
		usage(stderr);
		return 2;
	}
	json_t *resp = ctl_admin(o, req);
	if (!resp)
		return 1;
	json_object_del(resp, "ok");
	json_t *bans = json_object_get(resp, "bans");
	if (o->json || !json_is_array(bans)) {
		print_json(resp);
	} else {
		printf("enforcement: %s\n", json_string_value(json_object_get(resp, "enforcement")));
		size_t i;
		json_t *b;
		json_array_foreach(bans, i, b) {
			char *line = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
			printf("%s\n", line);
			free(line);
		}
	}
	json_decref(resp);
	return 0;
}

/* flows [--session ID]: what revocation would act on, and time-to-revoke figures. */
static int ctl_flows(const struct ctl_opts *o, int argc, char **argv)
{
	json_t *req = json_pack("{s:s}", "cmd", "flows");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--session") == 0 && i + 1 < argc) {
			json_object_set_new(req, "session", json_string(argv[++i]));
		} else if (strcmp(argv[i], "--json") != 0) {
			json_decref(req);
			usage(stderr);
			return 2;
		}
	}
	json_t *resp = ctl_admin(o, req);
	if (!resp)
		return 1;
	json_object_del(resp, "ok");
	print_json(resp);
	json_decref(resp);
	return 0;
}

/* Finds the admin socket and pin root from the daemon's config, without requiring
 * the whole file to validate (a broken config must not lock the operator out). */
static void read_config_paths(struct ctl_opts *o, bool explicit_config)
{
	json_error_t jerr;
	json_t *root = json_load_file(o->config_path, 0, &jerr);
	if (!root) {
		if (explicit_config)
			fprintf(stderr, "edgegatectl: %s: %s (using defaults)\n", o->config_path, jerr.text);
		return;
	}
	/* Static copies: they live as long as the process, nothing to free. */
	static char admin[4096], pins[4096];
	const char *as = json_string_value(json_object_get(root, "admin_socket"));
	if (as && !o->admin_socket) {
		snprintf(admin, sizeof(admin), "%s", as);
		o->admin_socket = admin;
	}
	const char *pr = json_string_value(json_object_get(json_object_get(root, "gate"), "pin_root"));
	if (pr) {
		snprintf(pins, sizeof(pins), "%s", pr);
		o->pin_root = pins;
	}
	json_decref(root);
}

int main(int argc, char **argv)
{
	struct ctl_opts o = { .config_path = DEFAULT_CONFIG, .pin_root = DEFAULT_PIN_ROOT };
	bool explicit_config = false;
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "admin-socket", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },        { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	/* '+': stop at the command word; its options belong to the command. */
	while ((c = getopt_long(argc, argv, "+c:a:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': o.config_path = optarg; explicit_config = true; break;
		case 'a': o.admin_socket = optarg; break;
		case 'j': o.json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	char **av = argv + optind;
	int ac = argc - optind;
	const char *cmd = av[0];
	/* jws/jwt verify work offline and need no config. */
	if (strcmp(cmd, "jws") == 0)
		return ctl_jws(&o, ac, av);
	if (strcmp(cmd, "jwt") == 0)
		return ctl_jwt(&o, ac, av);
	read_config_paths(&o, explicit_config);
	if (!o.admin_socket)
		o.admin_socket = DEFAULT_ADMIN;
	optind = 1; /* sub-commands may parse their own options with getopt */
	if (strcmp(cmd, "status") == 0)
		return ctl_status(&o, ac, av);
	if (strcmp(cmd, "stats") == 0)
		return ctl_stats(&o, ac, av);
	if (strcmp(cmd, "deny") == 0 || strcmp(cmd, "allow") == 0)
		return ctl_deny(&o, ac, av);
	if (strcmp(cmd, "sessions") == 0)
		return ctl_sessions(&o, ac, av);
	if (strcmp(cmd, "revoke") == 0)
		return ctl_revoke(&o, ac, av);
	if (strcmp(cmd, "bans") == 0)
		return ctl_bans(&o, ac, av);
	if (strcmp(cmd, "flows") == 0)
		return ctl_flows(&o, ac, av);
	fprintf(stderr, "edgegatectl: unknown command \"%s\"\n", cmd);
	usage(stderr);
	return 2;
}
