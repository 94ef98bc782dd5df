/* ctl_gate.c - `edgegatectl deny|allow add|del|list|load` and `edgegatectl stats`.
 * --reason takes a category (static|manual|ban|abuse|scanner: what the counters
 * use) or free text, which is kept as the rule's note (category manual).
 * `load FILE` bulk-loads one CIDR per line straight into the pinned maps, with the
 * daemon down only: a running daemon owns the maps and writes them through its
 * privileged process, which has no bulk request (docs/gate.md, edgegatectl).
 * Through the daemon's admin socket when it runs (the daemon then also persists
 * the entry in its store); otherwise straight into the pinned maps, so an operator
 * can still ban or unban with the daemon down (such entries are not persisted). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "ctl_gate.h"
#include "gate.h"

static void print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	puts(s);
	free(s);
}

static struct eg_gate *pinned(const struct ctl_opts *o)
{
	char err[512];
	struct eg_gate *g = eg_gate_open_pinned(o->pin_root, err, sizeof(err));

	if (!g)
		fprintf(stderr, "edgegatectl: %s and %s\n",
			ctl_daemon_reachable(o) ? "the daemon has no gate" : "daemon unreachable", err);
	return g;
}

static void print_entries(const json_t *entries, bool json)
{
	size_t i;
	json_t *e;

	if (json) {
		print_json(entries);
		return;
	}
	json_array_foreach(entries, i, e) {
		json_int_t ttl = json_integer_value(json_object_get(e, "ttl"));
		char t[32];

		if (ttl < 0)
			snprintf(t, sizeof(t), "never");
		else
			snprintf(t, sizeof(t), "%llds", (long long)ttl);
		const char *note = json_string_value(json_object_get(e, "note"));

		printf("%-44s %-8s expires %-8s%s%s\n", json_string_value(json_object_get(e, "prefix")),
		       json_string_value(json_object_get(e, "reason")), t, note ? " " : "",
		       note ? note : "");
	}
}

static int deny_usage(const char *what)
{
	fprintf(stderr, "usage: edgegatectl %s add|del|list [CIDR] [--ttl DUR] [--reason TEXT] [--json]\n"
			"       edgegatectl %s load FILE [--ttl DUR] [--reason CATEGORY]   (daemon stopped)\n",
		what, what);
	return 2;
}

/* Runs one deny/allow command on the pinned maps. */
/* The daemon's own lock on the pin root (priv.c holds it for its lifetime). Taking
 * it refuses a bulk load beside a running daemon and keeps one from starting
 * mid-load. Returns the fd to hold, -2 when a daemon runs, -1 without a pin root. */
static int daemon_lock(const struct ctl_opts *o)
{
	const char *root = o->pin_root && *o->pin_root ? o->pin_root : EG_PIN_ROOT_DEFAULT;
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		close(fd);
		return errno == EWOULDBLOCK ? -2 : -1;
	}
	return fd;
}

/* One CIDR per line; blank lines and '#' comments skipped. */
static int deny_load(const struct ctl_opts *o, bool allow, const char *path, int64_t ttl,
		     uint32_t reason)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	struct eg_prefix *v = NULL;
	size_t n = 0, cap = 0, lineno = 0;
	char line[256];
	struct eg_gate *g;
	long rc;
	int lk;

	if (!f) {
		perror(path);
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = line, *e;

		lineno++;
		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strcspn(s, " \t\r\n#");
		if (e == s)
			continue;
		*e = 0;
		if (n == cap) {
			struct eg_prefix *nv = realloc(v, (cap = cap ? cap * 2 : 4096) * sizeof(*v));

			if (!nv) {
				perror("realloc");
				free(v);
				return 1;
			}
			v = nv;
		}
		if (eg_gate_prefix_parse(s, &v[n])) {
			fprintf(stderr, "edgegatectl: %s:%zu: invalid prefix '%s'\n", path, lineno, s);
			free(v);
			if (f != stdin)
				fclose(f);
			return 2;
		}
		n++;
	}
	if (f != stdin)
		fclose(f);
	lk = daemon_lock(o);
	if (lk == -2) {
		fprintf(stderr, "edgegatectl: edgegated is running on %s: bulk load is refused while "
			"a daemon owns the maps (stop it first, or add entries through it with "
			"'%s add')\n", o->pin_root, allow ? "allow" : "deny");
		free(v);
		return 1;
	}
	g = pinned(o);
	if (!g) {
		if (lk >= 0)
			close(lk);
		free(v);
		return 1;
	}
	rc = eg_gate_bulk_add(g, allow, v, n, ttl, reason);
	eg_gate_close(g);
	if (lk >= 0)
		close(lk);
	free(v);
	if (rc < 0) {
		fprintf(stderr, "edgegatectl: loading %s failed: %s\n", path, strerror(errno));
		return 1;
	}
	printf("loaded %ld entries\n", rc);
	return 0;
}

static int deny_direct(const struct ctl_opts *o, bool allow, const char *verb,
		       const struct eg_prefix *p, int64_t ttl, uint32_t reason, const char *note,
		       bool json)
{
	struct eg_gate *g = pinned(o);
	int rc = 0;

	if (!g)
		return 1;
	if (!strcmp(verb, "list")) {
		json_t *a = eg_gate_list_json(g, allow);

		if (a)
			print_entries(a, json);
		else
			rc = 1;
		json_decref(a);
	} else if (!strcmp(verb, "add")) {
		rc = (allow ? eg_gate_allow_add_note(g, p, ttl, reason, note)
			    : eg_gate_deny_add_note(g, p, ttl, reason, note))
			     ? 1
			     : 0;
	} else {
		rc = (allow ? eg_gate_allow_del(g, p) : eg_gate_deny_del(g, p)) ? 1 : 0;
	}
	if (rc)
		fprintf(stderr, "edgegatectl: %s %s failed\n", allow ? "allow" : "deny", verb);
	eg_gate_close(g);
	return rc;
}

int ctl_deny(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option lo[] = { { "ttl", required_argument, NULL, 't' },
					    { "reason", required_argument, NULL, 'r' },
					    { "json", no_argument, NULL, 'j' },
					    { NULL, 0, NULL, 0 } };
	const char *what = argv[0], *verb, *cidr = NULL, *ttl_s = NULL, *reason_s = NULL, *note = NULL;
	bool allow = !strcmp(what, "allow"), json = o->json;
	struct eg_prefix p = { 0 };
	uint32_t reason = EG_RULE_MANUAL;
	int64_t ttl = 0;
	int c;

	if (argc < 2)
		return deny_usage(what);
	verb = argv[1];
	if (strcmp(verb, "add") && strcmp(verb, "del") && strcmp(verb, "list") && strcmp(verb, "load"))
		return deny_usage(what);
	/* optind 0 re-initialises glibc getopt (main parsed with "+", stop-at-first
	 * non-option); here options and the CIDR may come in any order. */
	optind = 0;
	argc--;
	argv++; /* argv[0] is now the verb */
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 't': ttl_s = optarg; break;
		case 'r': reason_s = optarg; break;
		case 'j': json = true; break;
		default: return deny_usage(what);
		}
	}
	if (optind < argc)
		cidr = argv[optind++];
	if (optind != argc || (strcmp(verb, "list") && !cidr) || (!strcmp(verb, "list") && cidr))
		return deny_usage(what);
	if (!strcmp(verb, "load") && reason_s && eg_gate_rule_parse(reason_s, &reason)) {
		fprintf(stderr, "edgegatectl: load takes a --reason category (static, manual, ban, abuse, scanner)\n");
		return 2;
	}
	if (!strcmp(verb, "load")) {
		if (ttl_s && (eg_parse_duration(ttl_s, &ttl) || ttl < 0)) {
			fprintf(stderr, "edgegatectl: invalid --ttl '%s' (e.g. 30s, 10m, 8h)\n", ttl_s);
			return 2;
		}
		return deny_load(o, allow, cidr, ttl, reason);
	}
	if (cidr && eg_gate_prefix_parse(cidr, &p)) {
		fprintf(stderr, "edgegatectl: invalid prefix '%s'\n", cidr);
		return 2;
	}
	if (ttl_s && (eg_parse_duration(ttl_s, &ttl) || ttl < 0)) {
		fprintf(stderr, "edgegatectl: invalid --ttl '%s' (e.g. 30s, 10m, 8h)\n", ttl_s);
		return 2;
	}
	if (reason_s && eg_gate_rule_parse(reason_s, &reason)) {
		/* free text: kept as the note, the counters' category stays manual */
		if (!eg_gate_note_valid(reason_s)) {
			fprintf(stderr, "edgegatectl: --reason text must be printable and under %d bytes\n",
				EG_NOTE_MAX);
			return 2;
		}
		note = reason_s;
	}

	if (ctl_daemon_reachable(o)) {
		char cmd[32];
		json_t *req, *resp;

		snprintf(cmd, sizeof(cmd), "%s.%s", allow ? "allow" : "deny", verb);
		req = json_pack("{s:s}", "cmd", cmd);
		if (cidr)
			json_object_set_new(req, "prefix", json_string(cidr));
		if (!strcmp(verb, "add")) {
			json_object_set_new(req, "ttl", json_integer(ttl));
			json_object_set_new(req, "reason", json_string(eg_gate_rule_name(reason)));
			if (note)
				json_object_set_new(req, "note", json_string(note));
		}
		resp = ctl_admin(o, req);
		if (!resp)
			return 1;
		if (!strcmp(verb, "list"))
			print_entries(json_object_get(resp, "entries"), json);
		else if (json)
			print_json(resp);
		json_decref(resp);
		return 0;
	}
	return deny_direct(o, allow, verb, &p, ttl, reason, note, json);
}

int ctl_stats(const struct ctl_opts *o, int argc, char **argv)
{
	bool json = o->json;
	json_t *st = NULL, *pk, *by;
	const char *k;
	json_t *v;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json")) {
			fprintf(stderr, "usage: edgegatectl stats [--json]\n");
			return 2;
		}
		json = true;
	}
	if (ctl_daemon_reachable(o)) {
		st = ctl_admin(o, json_pack("{s:s}", "cmd", "stats"));
		if (st)
			json_object_del(st, "ok");
	}
	if (!st) {
		struct eg_gate *g = pinned(o);

		if (!g)
			return 1;
		st = eg_gate_stats_json(g);
		eg_gate_close(g);
		if (!st)
			return 1;
	}
	if (json) {
		print_json(st);
	} else {
		pk = json_object_get(st, "packets");
		by = json_object_get(st, "bytes");
		printf("%-10s %14s %16s\n", "reason", "packets", "bytes");
		json_object_foreach(pk, k, v)
			printf("%-10s %14lld %16lld\n", k, (long long)json_integer_value(v),
			       (long long)json_integer_value(json_object_get(by, k)));
	}
	json_decref(st);
	return 0;
}

int ctl_gate_status(const struct ctl_opts *o, json_t *out)
{
	char err[512];
	struct eg_gate *g = eg_gate_open_pinned(o->pin_root, err, sizeof(err));
	json_t *st, *stats;

	if (!g)
		return -1;
	st = eg_gate_status_json(g);
	stats = eg_gate_stats_json(g);
	eg_gate_close(g);
	json_object_update(out, st);
	json_decref(st);
	if (stats)
		json_object_set_new(out, "stats", stats);
	return 0;
}
