/* fuzz_cookie.c - everything that reads a cookie value an attacker controls: the
 * session ticket (parse, cache lookup, store load) and sealed state cookies
 * (base64url + AES-GCM open). Nothing may crash, and no input may produce a session
 * or open a sealed blob without the key. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "identity.h"
#include "seal.h"
#include "session.h"

static struct eg_config cfg;
static struct eg_daemon d;
static uint8_t key[EG_SEAL_KEY_LEN];
static char ticket[EG_TICKET_MAX];
static char dir[] = "/tmp/eg-fuzz-cookie-XXXXXX";

static void cleanup(void)
{
	char cmd[64];

	eg_sessions_free(&d);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];
	struct eg_session_new n = { 0 };

	if (!mkdtemp(dir))
		abort();
	atexit(cleanup);
	cfg.state_dir = dir;
	cfg.cookie.idle_s = 3600;
	cfg.cookie.lifetime_s = 3600;
	d.cfg = &cfg;
	if (eg_sessions_init(&d, err, sizeof(err)))
		abort();
	n.claims = json_pack("{s:s}", "sub", "fuzz");
	n.sub = "fuzz";
	if (eg_session_create(&d, &n, ticket, sizeof(ticket), NULL))
		abort();
	json_decref(n.claims);
	memset(key, 0x42, sizeof(key));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct eg_identity id;
	size_t n;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	memset(&id, 0, sizeof(id));
	if (eg_session_identity_ticket(&d, s, &id) == 0) {
		/* only the real ticket may be a session */
		if (strcmp(s, ticket) != 0)
			abort();
		json_decref(id.claims);
	}
	char *pt = eg_unseal(key, "_edgegate_state_x", s, strlen(s), &n);
	if (pt)
		abort(); /* forging AES-GCM is not expected of a fuzzer */
	free(s);
	return 0;
}
