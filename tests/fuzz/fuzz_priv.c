/* fuzz_priv.c - the privileged process's request parser and validator (priv.c,
 * priv_proto.h) on arbitrary datagrams, as a compromised daemon could send them. Besides
 * memory safety it checks the contract: a datagram of the wrong size, version or op is
 * refused (the channel closes), and a NOTE_FLOWS datagram must be exactly its request and
 * `count` (1..EG_PRIV_NOTE_BATCH) flows; every accepted one is answered with its own op and
 * sequence number and rc 0 or -errno; with no gate loaded no gate write ever succeeds; a
 * socket is never probed or destroyed for a flow that was not noted first; a rule whose
 * note is unterminated or not printable text is refused by the validator (eg_priv_rule_ok)
 * whatever else it says, so nothing but operator text reaches the notes map. Runs without a
 * gate or sock_diag socket (nothing reaches the kernel). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "priv.h"
#include "priv_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eg_priv_req q;
	struct eg_priv_reply a;
	int rc = eg_priv_answer(data, size, &a);

	if (size < sizeof(q)) {
		if (rc != -1)
			abort();
		return 0;
	}
	memcpy(&q, data, sizeof(q));
	if (q.version != EG_PRIV_VERSION || q.op == 0 || q.op >= EG_PRIV__OP_COUNT || size != eg_priv_req_size(&q)) {
		if (rc != -1)
			abort();
		return 0;
	}
	if (rc != 0 || a.version != EG_PRIV_VERSION || a.op != q.op || a.seq != q.seq || a.rc > 0)
		abort();
	if (q.op == EG_PRIV_RULE_PUT) {
		const char *n = q.u.rule.note;
		const char *end = memchr(n, 0, sizeof(q.u.rule.note));
		bool bad = !end;

		for (const char *c = n; end && c < end; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				bad = true;
		if (bad && eg_priv_rule_ok(&q.u.rule, true) != -EPERM)
			abort();
	}
	switch (q.op) {
	case EG_PRIV_NOTE_FLOWS:
		/* each flow recorded or refused on its own (not a connection, or over the rate) */
		if (a.value < 0 || a.value > (int64_t)q.u.notes.count || (a.rc != 0) != (a.value < (int64_t)q.u.notes.count) ||
		    (a.rc && a.rc != -EPERM && a.rc != -EAGAIN))
			abort();
		break;
	case EG_PRIV_REVOKE_FLOW:
	case EG_PRIV_REVOKE_SESSION:
	case EG_PRIV_RULE_PUT:
	case EG_PRIV_RULE_DEL:
	case EG_PRIV_GC:
		if (a.rc == 0)
			abort(); /* no gate: nothing can have been written */
		break;
	case EG_PRIV_PROBE_FLOW:
	case EG_PRIV_KILL_FLOW:
		/* noted: no socket layer here (-EBADF); not noted: refused; over the rate: -EAGAIN */
		if (a.rc != -EPERM && a.rc != -EBADF && a.rc != -EAGAIN)
			abort();
		break;
	}
	return 0;
}
