/* ctl.h - edgegatectl: global options and the sub-command entry points.
 * Exit codes: 0 success/valid, 1 failure/invalid (reason on stderr), 2 usage error. */
#ifndef EG_CTL_H
#define EG_CTL_H

#include <jansson.h>
#include <stdbool.h>

struct ctl_opts {
	const char *config_path;  /* --config (default /etc/edgegate/edgegate.json) */
	const char *admin_socket; /* --admin-socket, else from the config */
	const char *pin_root;     /* from the config's gate.pin_root, else default */
	bool json;                /* --json where supported */
};

/* Sends one admin request; NULL (and a message on stderr) when the daemon is unreachable. */
json_t *ctl_admin(const struct ctl_opts *o, json_t *req /* stolen */);
bool ctl_daemon_reachable(const struct ctl_opts *o);

/* argv[0] is the command word ("jws", "deny", ...). */
int ctl_jws(const struct ctl_opts *o, int argc, char **argv);
int ctl_jwt(const struct ctl_opts *o, int argc, char **argv);
int ctl_status(const struct ctl_opts *o, int argc, char **argv);
int ctl_stats(const struct ctl_opts *o, int argc, char **argv);
int ctl_deny(const struct ctl_opts *o, int argc, char **argv);  /* also "allow" via argv[0] */
int ctl_sessions(const struct ctl_opts *o, int argc, char **argv);
int ctl_revoke(const struct ctl_opts *o, int argc, char **argv);

#endif
