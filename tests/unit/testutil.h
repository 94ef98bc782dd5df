/* testutil.h - shared bits of the cmocka unit tests. */
#ifndef EG_TESTUTIL_H
#define EG_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Root of the repository's shared test data (tests/vectors, copied from the C2SP Wycheproof project). */
static inline const char *eg_vectors_dir(void)
{
	const char *d = getenv("EG_VECTORS");
	return d ? d : "tests/vectors";
}

#endif
