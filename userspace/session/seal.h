/* seal.h - authenticated encryption of small records (state cookies, session records).
 *
 * AES-256-GCM with a random 96-bit nonce; keys come from HKDF-SHA256 over a secret
 * with a purpose label, so one secret never keys two purposes. The AAD binds a
 * sealed blob to where it belongs (a cookie name, a store key): moving it elsewhere
 * makes it fail to open. Blob layout: version(1) | nonce(12) | ciphertext | tag(16). */
#ifndef EG_SEAL_H
#define EG_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define EG_SEAL_KEY_LEN 32
#define EG_SEAL_OVERHEAD (1 + 12 + 16)

/* HKDF-SHA256(secret, salt, info) -> 32-byte key. 0 ok. */
int eg_seal_derive(const void *secret, size_t secret_len, const void *salt, size_t salt_len,
		   const char *info, uint8_t key[EG_SEAL_KEY_LEN]);

/* Binary form: out must hold len + EG_SEAL_OVERHEAD bytes. Returns the blob length or -1. */
long eg_seal_raw(const uint8_t key[EG_SEAL_KEY_LEN], const char *aad, const void *pt, size_t len,
		 uint8_t *out);
/* Opens a binary blob; out must hold len bytes. Returns plaintext length or -1 (bad tag,
 * wrong key/aad, truncated, unknown version). */
long eg_unseal_raw(const uint8_t key[EG_SEAL_KEY_LEN], const char *aad, const uint8_t *blob,
		   size_t len, uint8_t *out);

/* Text form (base64url, cookie-safe). eg_seal returns a malloc'd string or NULL;
 * eg_unseal returns a malloc'd NUL-terminated plaintext (length in *out_len) or NULL. */
char *eg_seal(const uint8_t key[EG_SEAL_KEY_LEN], const char *aad, const void *pt, size_t len);
char *eg_unseal(const uint8_t key[EG_SEAL_KEY_LEN], const char *aad, const char *text,
		size_t text_len, size_t *out_len);

#endif
