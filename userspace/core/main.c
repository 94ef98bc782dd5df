/* main.c - edgegated's start-up story:
 *   config -> instance lock -> split (priv.c: the privileged process loads and attaches
 *   the gate, owns sock_diag, keeps CAP_NET_ADMIN; this process continues without it) ->
 *   store -> keys, sessions, OIDC -> admin socket and listeners -> drop to `user` with no
 *   capability in any thread -> serve until SIGTERM. See docs/privsep.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <jansson.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "abuse.h"
#include "admin.h"
#include "config.h"
#include "daemon.h"
#include "events.h"
#include "forbidden.h"
#include "gate.h"
#include "http.h"
#include "jwks.h"
#include "log.h"
#include "metrics.h"
#include "mtls.h"
#include "oidc.h"
#include "priv.h"
#include "proxy.h"
#include "revoke.h"
#include "session.h"
#include "store.h"
#include "tokcache.h"
#include "util.h"
#include "verdict.h"

#define EG_VERSION "0.1.0"

static volatile sig_atomic_t got_stop, got_hup;
static time_t started_at;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: edgegated --config FILE [--check] [--log-level LEVEL]\n"
		   "       edgegated --version\n"
		   "  --config FILE   the JSON configuration (see README, \"Configuration\")\n"
		   "  --check         validate the configuration and exit (0 valid, 1 invalid)\n");
}

/* --- endpoints that belong to the daemon itself ------------------------------------------ */

static void h_healthz(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp)
{
	eg_resp_text(resp, 200, "ok\n");
}

static void h_readyz(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp)
{
	bool oidc_ok = !d->cfg->oidc.present || eg_oidc_ready(d);
	if (d->ready && oidc_ok)
		eg_resp_text(resp, 200, "ready\n");
	else
		eg_resp_text(resp, 503, oidc_ok ? "starting\n" : "waiting for OpenID Provider discovery\n");
}

/* The counters tell who is refused, banned, revoked and how often logins happen: read by
 * the proxies this daemon trusts (and the unix socket) and the addresses in metrics.allow,
 * not by whoever else reaches the listener. /healthz and /readyz stay open to all. */
static bool metrics_reader(const struct eg_config *cfg, const struct eg_req *r)
{
	if (r->peer_trusted)
		return true;
	for (size_t i = 0; i < cfg->metrics.n_allow; i++)
		if (eg_prefix_contains(&cfg->metrics.allow[i], r->peer_addr))
			return true;
	return false;
}

static void h_metrics(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp)
{
	if (!metrics_reader(d->cfg, r)) {
		eg_resp_text(resp, 403, "metrics: not for this address (trusted_proxies, metrics.allow)\n");
		return;
	}
	if (d->jwt_keys) {
		struct eg_keysource_stats st;
		eg_keysource_stats(d->jwt_keys, &st);
		eg_metric_set(d->metrics, "edgegate_jwks_keys", "source", "jwt", st.keys);
	}
	eg_metric_set(d->metrics, "edgegate_up", NULL, NULL, 1);
	eg_metric_set(d->metrics, "edgegate_gate_attached", NULL, NULL, d->gate ? 1 : 0);
	size_t len;
	char *text = eg_metrics_render(d->metrics, &len);
	eg_resp_body(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text);
	free(text);
}

static json_t *admin_status(struct eg_daemon *d, const json_t *req, const char **err)
{
	const struct eg_config *c = d->cfg;
	json_t *listen = json_array();
	for (size_t i = 0; i < c->n_listen; i++)
		json_array_append_new(listen, json_string(c->listen[i].text));
	json_t *st = json_pack("{s:s,s:i,s:i,s:o,s:s,s:b,s:b}", "version", EG_VERSION, "pid", (int)getpid(),
			       "uptime_s", (int)(time(NULL) - started_at), "listen", listen, "store",
			       d->store ? eg_store_backend(d->store) : "none", "ready", d->ready, "oidc",
			       c->oidc.present);
	json_object_set_new(st, "routes", json_integer((json_int_t)c->n_routes));
	json_object_set_new(st, "mtls", eg_mtls_status_json(d));
	if (d->jwt_keys) {
		struct eg_keysource_stats ks;
		eg_keysource_stats(d->jwt_keys, &ks);
		json_object_set_new(st, "jwks", json_pack("{s:i,s:I,s:I,s:I}", "keys", (int)ks.keys, "fetch_ok",
							   (json_int_t)ks.fetch_ok, "fetch_fail",
							   (json_int_t)ks.fetch_fail, "last_ok_unix",
							   (json_int_t)ks.last_ok_unix));
	}
	if (d->gate) {
		json_object_set_new(st, "gate", eg_gate_status_json(d->gate));
		json_object_set_new(st, "enforcement", json_string("xdp"));
	} else {
		json_object_set_new(st, "enforcement", json_string(c->gate.present ? "userspace (XDP gate not attached)"
										   : "userspace (no gate configured)"));
	}
	return st;
}

/* --- start-up steps ---------------------------------------------------------------------------- */

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0755) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int open_keys(struct eg_daemon *d)
{
	const struct eg_jwt_config *j = &d->cfg->jwt;
	if (!j->present)
		return 0;
	char err[256];
	struct eg_keysource_opts o = { .file = j->jwks_file, .url = j->jwks_url, .refresh_s = j->jwks_refresh_s,
				       .min_refetch_s = j->jwks_min_refetch_s, .metrics = d->metrics,
				       .ca_file = j->ca_file };
	d->jwt_keys = eg_keysource_new(&o, err, sizeof(err));
	if (!d->jwt_keys) {
		log_err("jwt: %s", err);
		return -1;
	}
	/* cache_entries 0: every bearer token is verified on every request */
	d->tokcache = j->cache_entries ? eg_tokcache_new(j->cache_entries) : NULL;
	return 0;
}

/* One daemon per state_dir (and so per store and sockets): a second start must not take
 * over the first one's sockets. The lock is held by both processes until they exit. */
static int lock_instance(const char *state_dir)
{
	char path[4096], pid[32] = "";
	int fd;

	snprintf(path, sizeof(path), "%s/edgegated.lock", state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_err("%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		ssize_t n = read(fd, pid, sizeof(pid) - 1);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		log_err("another edgegated%s%s is running with state_dir %s (lock %s); not starting", *pid ? " pid " : "",
			pid, state_dir, path);
		close(fd);
		return -1;
	}
	if (ftruncate(fd, 0) == 0) {
		int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
		if (pwrite(fd, pid, (size_t)n, 0) != n)
			log_warn("%s: cannot record the pid", path);
	}
	return fd;
}

static void periodic(struct eg_daemon *d, unsigned tick)
{
	eg_mtls_periodic(d);
	if (d->gate && tick % 10 == 0)
		eg_gate_gc(d->gate);
	if (d->store && tick % 60 == 0)
		eg_store_gc(d->store);
}

/* The unix sockets are handed to listen_group (nginx's) after they are bound, when this
 * process holds no CAP_CHOWN any more: an owner may give a file to a group it is a member
 * of, so join that group while still able to (no thread exists yet). */
static int join_listen_group(const struct eg_config *cfg)
{
	gid_t gid;
	if (!cfg->listen_group)
		return 0;
	if (eg_group_id(cfg->listen_group, &gid) != 0) {
		log_err("listen_group: no group \"%s\"", cfg->listen_group);
		return -1;
	}
	if (setgroups(1, &gid) != 0) {
		log_err("listen_group: cannot join group \"%s\": %s", cfg->listen_group, strerror(errno));
		return -1;
	}
	return 0;
}

/* state_dir belongs to the user the daemon runs as: after the drop it still appends,
 * renames and compacts there (revocation tombstones, the stream position). 0700 keeps
 * everyone else out. */
static int give_state_dir(const struct eg_config *cfg)
{
	if (!cfg->user || geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(cfg->user);
	if (!pw) {
		log_err("user: no such user \"%s\"", cfg->user);
		return -1;
	}
	/* chmod first: once the directory is the user's, changing its mode needs CAP_FOWNER,
	 * which the unit's bounding set does not give; chown needs CAP_CHOWN, which it does */
	if (chmod(cfg->state_dir, 0700) != 0 || chown(cfg->state_dir, pw->pw_uid, pw->pw_gid) != 0) {
		log_err("state_dir %s: cannot hand it to %s: %s", cfg->state_dir, cfg->user, strerror(errno));
		return -1;
	}
	return 0;
}

static int run(struct eg_config *cfg)
{
	struct eg_daemon dd = { .cfg = cfg }, *d = &dd;
	char err[512];
	int rc = 1;
	started_at = time(NULL);
	d->metrics = eg_metrics_new();
	eg_metric_help(d->metrics, "edgegate_verdicts_total", "counter", "auth_request verdicts by result and reason");
	eg_metric_help(d->metrics, "edgegate_verdict_duration_seconds", "histogram", "time to answer GET /auth");
	eg_metric_help(d->metrics, "edgegate_token_cache_total", "counter", "bearer verdict cache lookups");
	eg_metric_help(d->metrics, "edgegate_jwks_fetches_total", "counter", "JWKS fetches by result");

	if (mkdir_p(cfg->state_dir, 0700) != 0) {
		log_err("state_dir %s: %s", cfg->state_dir, strerror(errno));
		goto out;
	}
	if (give_state_dir(cfg) != 0)
		goto out;
	if (lock_instance(cfg->state_dir) < 0)
		goto out;
	/* Before any thread or store: the privileged process is forked from here. */
	int chan = eg_priv_split(cfg, err, sizeof(err));
	if (chan < 0 || eg_privc_start(chan, &d->gate, err, sizeof(err)) != 0) {
		log_err("privilege separation: %s", err);
		goto out;
	}
	if (join_listen_group(cfg) != 0)
		goto out;
	if (eg_privc_trim_caps(cfg->user != NULL) != 0) {
		log_err("cannot drop capabilities: %s", strerror(errno));
		goto out;
	}
	d->store = eg_store_open(cfg, err, sizeof(err));
	if (!d->store) {
		log_err("store: %s", err);
		goto out;
	}
	if (d->gate) {
		eg_gate_use_store(d->gate, d->store);
		eg_gate_register_admin();
	}
	if (open_keys(d) != 0)
		goto out;
	if (eg_mtls_init(d, err, sizeof(err)) != 0) {
		log_err("mtls: %s", err);
		goto out;
	}
	if (cfg->store.sync_ms)
		log_warn("store.sync is deprecated and ignored: other nodes' revocations and bans arrive as events "
			 "(docs/sessions.md, \"Several hosts\")");
	if (eg_events_init(d, err, sizeof(err)) != 0) {
		log_err("%s", err);
		goto out;
	}
	if (eg_revoke_init(d, err, sizeof(err)) != 0) {
		log_err("revocation: %s", err);
		goto out;
	}
	if (eg_abuse_init(d, err, sizeof(err)) != 0) {
		log_err("abuse control: %s", err);
		goto out;
	}
	if (eg_sessions_init(d, err, sizeof(err)) != 0) {
		log_err("sessions: %s", err);
		goto out;
	}
	if (eg_events_start(d) != 0) {
		log_err("events: cannot start the stream follower");
		goto out;
	}
	if (cfg->oidc.present && eg_oidc_init(d, err, sizeof(err)) != 0) {
		log_err("oidc: %s", err);
		goto out;
	}
	if (eg_verdict_init(d) != 0)
		goto out;
	eg_http_register("/auth", "*", eg_verdict);
	eg_http_store_offload("/auth");
	if (cfg->proxy && !cfg->proxy->target) /* Envoy: the original path follows /auth */
		eg_http_register(EG_PROXY_PATH_PREFIX "/*", "*", eg_verdict);
	eg_http_store_offload(EG_PROXY_PATH_PREFIX "/*");
	eg_http_register("/healthz", "GET,HEAD", h_healthz);
	eg_http_register("/readyz", "GET,HEAD", h_readyz);
	eg_http_register("/metrics", "GET", h_metrics);
	eg_forbidden_init(d);
	eg_admin_register("status", admin_status);

	char admin_dir[4096];
	snprintf(admin_dir, sizeof(admin_dir), "%s", cfg->admin_socket);
	if (mkdir_p(dirname(admin_dir), 0755) != 0 || eg_admin_start(d, cfg->admin_socket) != 0)
		goto out;
	if (eg_http_start(d) != 0)
		goto out;
	if (eg_privc_drop_all(cfg->user) != 0)
		goto out;
	if (d->jwt_keys)
		eg_keysource_start(d->jwt_keys);
	d->ready = true;
	log_info("edgegated %s ready (%zu routes, store %s, gate %s)", EG_VERSION, cfg->n_routes,
		 eg_store_backend(d->store), d->gate ? "attached" : "off");

	for (unsigned tick = 1; !got_stop; tick++) {
		struct timespec ts = { 1, 0 };
		nanosleep(&ts, NULL);
		if (got_hup) {
			got_hup = 0;
			if (d->tokcache)
				eg_tokcache_clear(d->tokcache);
			eg_mtls_cache_clear(d);
			log_info("SIGHUP: caches flushed");
		}
		periodic(d, tick);
	}
	log_info("shutting down");
	rc = 0;
out:
	d->stopping = true;
	eg_http_stop(d);
	eg_admin_stop();
	eg_forbidden_free();
	if (cfg->oidc.present)
		eg_oidc_free(d);
	eg_events_free(d);
	eg_sessions_free(d);
	eg_abuse_free(d);
	eg_revoke_free(d);
	eg_mtls_free(d);
	eg_keysource_free(d->jwt_keys);
	eg_tokcache_free(d->tokcache);
	if (d->gate)
		eg_gate_close(d->gate); /* read-only fds; the privileged process detaches on its way out */
	if (d->store)
		eg_store_close(d->store);
	eg_metrics_free(d->metrics);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'k' },
		{ "log-level", required_argument, NULL, 'l' }, { "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *config_path = NULL, *level = NULL;
	bool check = false;
	int c;
	while ((c = getopt_long(argc, argv, "c:kl:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case 'k': check = true; break;
		case 'l': level = optarg; break;
		case 'V': printf("edgegated %s\n", EG_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!config_path || optind != argc) {
		usage(stderr);
		return 2;
	}
	char err[512];
	struct eg_config *cfg = config_load(config_path, err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "edgegated: %s\n", err);
		return 1;
	}
	if (check) {
		printf("%s: configuration OK\n", config_path);
		config_free(cfg);
		return 0;
	}
	if (eg_log_set_level(level ? level : cfg->log_level) != 0) {
		fprintf(stderr, "edgegated: unknown log level %s\n", level);
		config_free(cfg);
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	int rc = run(cfg);
	config_free(cfg);
	return rc;
}
