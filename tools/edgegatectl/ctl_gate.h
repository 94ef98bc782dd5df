/* ctl_gate.h - edgegatectl's gate commands (deny/allow/stats in ctl.h) and the gate
 * part of `status` read straight from the pinned maps. */
#ifndef EG_CTL_GATE_H
#define EG_CTL_GATE_H

#include <jansson.h>
#include "ctl.h"

/* Fills out with the gate state read from the maps pinned under o->pin_root
 * (works without the daemon; needs root). 0 ok, -1 when no pinned maps. */
int ctl_gate_status(const struct ctl_opts *o, json_t *out);

#endif
