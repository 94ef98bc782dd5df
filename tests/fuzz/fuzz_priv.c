/* fuzz_priv.c - the privileged process's request parser and validator (priv.c,
 * priv_proto.h) on arbitrary datagrams, as a compromised daemon could send them. Besides
 * memory safety it checks the contract: a datagram of the wrong size, version or op is
 * refused (the channel closes); every accepted one is answered with its own op and
 * sequence number and rc 0 or -errno; with no gate loaded no gate write ever succeeds; a
 * socket is never probed or destroyed for a flow that was not noted first. Runs without a
 * gate or sock_diag socket (nothing reaches the kernel). */
#include <errno.h>
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

	if (size != sizeof(q)) {
		if (rc != -1)
			abort();
		return 0;
	}
	memcpy(&q, data, sizeof(q));
	if (q.version != EG_PRIV_VERSION || q.op == 0 || q.op >= EG_PRIV__OP_COUNT) {
		if (rc != -1)
			abort();
		return 0;
	}
	if (rc != 0 || a.version != EG_PRIV_VERSION || a.op != q.op || a.seq != q.seq || a.rc > 0)
		abort();
	switch (q.op) {
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
