/* daemon.h - the state every handler shares. One instance, built by main.c. */
#ifndef EG_DAEMON_H
#define EG_DAEMON_H

#include <pthread.h>
#include <stdbool.h>

struct eg_config;
struct eg_keysource;
struct eg_verdict_cache;
struct eg_metrics;
struct eg_gate;
struct eg_store;
struct eg_oidc;
struct eg_sessions;
struct eg_revoke;
struct eg_abuse;
struct eg_mtls;
struct eg_events;
struct MHD_Daemon;
struct eg_offload;

struct eg_daemon {
	struct eg_config *cfg;
	struct eg_keysource *jwt_keys;      /* bearer-token keys (jwt.jwks_file / jwks_url) */
	struct eg_verdict_cache *tokcache;  /* bearer verdicts keyed by token hash */
	struct eg_metrics *metrics;
	struct eg_gate *gate;       /* NULL when no gate is configured or it could not load */
	struct eg_store *store;     /* embedded or Redis */
	struct eg_oidc *oidc;       /* NULL without an oidc section */
	struct eg_sessions *sessions;
	struct eg_revoke *revoke; /* flows of sessions (revoke.c) */
	struct eg_abuse *abuse;   /* per-source failure counting and bans (abuse.c) */
	struct eg_events *events; /* the shared store's event stream, followed (events.c) */
	struct eg_offload *offload; /* the store workers (http/offload.c) */
	struct MHD_Daemon *mhd[8];
	int n_mhd;
	volatile bool ready;
	volatile bool stopping;
};

#endif
