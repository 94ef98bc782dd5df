/* gate_admin.c - admin-socket commands of the edge gate:
 *   deny.add {prefix, ttl?, reason?, note?}   ttl: seconds or "30m"; reason: static|manual|ban|
 *            abuse|scanner (the counters' category) or free text, kept as the note (category manual)
 *   deny.del {prefix}   deny.list   (and the same for allow.*)
 *   stats                -> {packets:{reason:N}, bytes:{reason:N}}
 *   gate.status          -> eg_gate_status_json() */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "admin.h"
#include "config.h"
#include "daemon.h"
#include "gate.h"
#include "log.h"

static bool need_gate(struct eg_daemon *d, const char **err)
{
	if (d && d->gate)
		return true;
	*err = "the XDP gate is not loaded";
	return false;
}

static int req_prefix(const json_t *req, struct eg_prefix *p, const char **err)
{
	const char *s = json_string_value(json_object_get(req, "prefix"));

	if (!s) {
		*err = "missing \"prefix\"";
		return -1;
	}
	if (eg_gate_prefix_parse(s, p)) {
		*err = "invalid prefix (want an IPv4/IPv6 address or CIDR)";
		return -1;
	}
	return 0;
}

static int req_ttl(const json_t *req, int64_t *ttl, const char **err)
{
	const json_t *t = json_object_get(req, "ttl");

	*ttl = 0;
	if (!t || json_is_null(t))
		return 0;
	if (json_is_integer(t) && json_integer_value(t) >= 0) {
		*ttl = json_integer_value(t);
		return 0;
	}
	if (json_is_string(t) && eg_parse_duration(json_string_value(t), ttl) == 0 && *ttl >= 0)
		return 0;
	*err = "invalid \"ttl\" (seconds or a duration like \"30m\")";
	return -1;
}

static json_t *rule_add(struct eg_daemon *d, const json_t *req, const char **err, bool allow)
{
	struct eg_prefix p;
	const char *rs = json_string_value(json_object_get(req, "reason"));
	const char *note = json_string_value(json_object_get(req, "note"));
	uint32_t reason = EG_RULE_MANUAL;
	int64_t ttl;
	char txt[64];
	int rc;

	if (!need_gate(d, err) || req_prefix(req, &p, err) || req_ttl(req, &ttl, err))
		return NULL;
	if (rs && eg_gate_rule_parse(rs, &reason)) {
		if (note) {
			*err = "unknown \"reason\" (static, manual, ban, abuse, scanner) beside a \"note\"";
			return NULL;
		}
		note = rs; /* free text: the note; the category stays manual */
	}
	if (!eg_gate_note_valid(note)) {
		*err = "invalid note (printable text, at most 63 bytes)";
		return NULL;
	}
	rc = allow ? eg_gate_allow_add_note(d->gate, &p, ttl, reason, note)
		   : eg_gate_deny_add_note(d->gate, &p, ttl, reason, note);
	if (rc) {
		*err = errno == E2BIG || errno == ENOMEM ? "map full"
		       : errno == EPERM  ? "refused by the privileged process (prefix shorter than /8 or /16, "
					  "expiry more than a year ahead, or a static entry: those come from "
					  "gate.deny/gate.allow only; docs/privsep.md)"
		       : errno == EAGAIN ? "too many map updates, retry"
					 : "map update failed";
		return NULL;
	}
	eg_gate_prefix_format(&p, txt, sizeof(txt));
	log_info("gate: %s add %s ttl=%llds reason=%s%s%s", allow ? "allow" : "deny", txt,
		 (long long)ttl, eg_gate_rule_name(reason), note && *note ? " note=" : "",
		 note && *note ? note : "");
	json_t *out = json_pack("{s:s, s:I, s:s}", "prefix", txt, "ttl", (json_int_t)ttl, "reason",
				eg_gate_rule_name(reason));
	if (note && *note)
		json_object_set_new(out, "note", json_string(note));
	return out;
}

static json_t *rule_del(struct eg_daemon *d, const json_t *req, const char **err, bool allow)
{
	struct eg_prefix p;
	char txt[64];
	int rc;

	if (!need_gate(d, err) || req_prefix(req, &p, err))
		return NULL;
	rc = allow ? eg_gate_allow_del(d->gate, &p) : eg_gate_deny_del(d->gate, &p);
	if (rc) {
		*err = errno == ENOENT ? "no such entry"
		       : errno == EPERM ? "refused by the privileged process (a static entry: edit gate.deny and "
					  "restart; docs/privsep.md)"
					: "map delete failed";
		return NULL;
	}
	eg_gate_prefix_format(&p, txt, sizeof(txt));
	log_info("gate: %s del %s", allow ? "allow" : "deny", txt);
	return json_pack("{s:s}", "prefix", txt);
}

static json_t *rule_list(struct eg_daemon *d, const char **err, bool allow)
{
	json_t *a;

	if (!need_gate(d, err))
		return NULL;
	a = eg_gate_list_json(d->gate, allow);
	if (!a) {
		*err = "reading the map failed";
		return NULL;
	}
	return json_pack("{s:o}", "entries", a);
}

static json_t *deny_add(struct eg_daemon *d, const json_t *r, const char **e) { return rule_add(d, r, e, false); }
static json_t *deny_del(struct eg_daemon *d, const json_t *r, const char **e) { return rule_del(d, r, e, false); }
static json_t *deny_list(struct eg_daemon *d, const json_t *r, const char **e) { return rule_list(d, e, false); }
static json_t *allow_add(struct eg_daemon *d, const json_t *r, const char **e) { return rule_add(d, r, e, true); }
static json_t *allow_del(struct eg_daemon *d, const json_t *r, const char **e) { return rule_del(d, r, e, true); }
static json_t *allow_list(struct eg_daemon *d, const json_t *r, const char **e) { return rule_list(d, e, true); }

static json_t *stats(struct eg_daemon *d, const json_t *req, const char **err)
{
	json_t *s;

	if (!need_gate(d, err))
		return NULL;
	s = eg_gate_stats_json(d->gate);
	if (!s)
		*err = "reading the statistics failed";
	return s;
}

static json_t *status(struct eg_daemon *d, const json_t *req, const char **err)
{
	if (!need_gate(d, err))
		return NULL;
	return json_pack("{s:o}", "gate", eg_gate_status_json(d->gate));
}

void eg_gate_register_admin(void)
{
	eg_admin_register("deny.add", deny_add);
	eg_admin_register("deny.del", deny_del);
	eg_admin_register("deny.list", deny_list);
	eg_admin_register("allow.add", allow_add);
	eg_admin_register("allow.del", allow_del);
	eg_admin_register("allow.list", allow_list);
	eg_admin_register("stats", stats);
	eg_admin_register("gate.status", status);
}
