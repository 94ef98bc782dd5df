/* ufold.h - Unicode checks and folds for path readings (ICU underneath). */
#ifndef EG_UFOLD_H
#define EG_UFOLD_H

#include <stdbool.h>
#include <stddef.h>

/* true when s[0..n) is well-formed UTF-8: no overlong forms, no surrogates, nothing
 * past U+10FFFF. */
bool eg_utf8_valid(const char *s, size_t n);

/* The case- and compatibility-folded form of s[0..n): overlong encodings of ASCII
 * decoded (what lenient decoders do with %c0%ae), other ill-formed bytes replaced by
 * U+FFFD, upper-cased (root locale, so dotless i and long s become I and S), then
 * NFKC_Casefold (fullwidth forms, ligatures, default-ignorables dropped, lower case).
 * Returns a malloc'd NUL-terminated string and its length in *outn; NULL if the result
 * would exceed maxlen bytes or ICU fails. */
char *eg_unicode_fold(const char *s, size_t n, size_t maxlen, size_t *outn);

#endif
