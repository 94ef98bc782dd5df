/* seal.c - AES-256-GCM sealing and HKDF key derivation on OpenSSL 3 EVP. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

#include "seal.h"
#include "util.h"

#define SEAL_VERSION 1
#define NONCE_LEN 12
#define TAG_LEN 16
#define MAX_PT (1u << 24)

int eg_seal_derive(const void *secret, size_t secret_len, const void *salt, size_t salt_len,
		   const char *info, uint8_t key[EG_SEAL_KEY_LEN])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM p[5], *q = p;
	int rc = -1;

	if (!ctx || !secret || secret_len == 0)
		goto out;
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len);
	if (salt && salt_len)
		*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
							 salt_len);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
						 info ? strlen(info) : 0);
	*q = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, key, EG_SEAL_KEY_LEN, p) == 1)
		rc = 0;
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rc;
}

long eg_seal_raw(const uint8_t key[EG_SEAL_KEY_LEN], const char *aad, const void *pt, size_t len,
		 uint8_t *out)
{
	EVP_CIPHER_CTX *c;
	int n, ok;
	long total = -1;

	if (len > MAX_PT)
		return -1;
	out[0] = SEAL_VERSION;
	if (random_bytes(out + 1, NONCE_LEN))
		return -1;
	c = EVP_CIPHER_CTX_new();
	if (!c)
		return -1;
	ok = EVP_EncryptInit_ex2(c, EVP_aes_256_gcm(), key, out + 1, NULL) == 1;
	if (ok && aad && *aad)
		ok = EVP_EncryptUpdate(c, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) == 1;
	if (ok)
		ok = EVP_EncryptUpdate(c, out + 1 + NONCE_LEN, &n, pt, (int)len) == 1;
	if (ok)
		ok = EVP_EncryptFinal_ex(c, out + 1 + NONCE_LEN + n, &n) == 1;
	if (ok)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
					 out + 1 + NONCE_LEN + len) == 1;
	if (ok)
		total = (long)(len + EG_SEAL_OVERHEAD);
	EVP_CIPHER_CTX_free(c);
	return total;
}

long eg_unseal_raw(const uint8_t key[EG_SEAL_KEY_LEN], const char *aad, const uint8_t *blob,
		   size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *c;
	size_t ctlen;
	int n, ok;
	long total = -1;

	if (len < EG_SEAL_OVERHEAD || blob[0] != SEAL_VERSION || len - EG_SEAL_OVERHEAD > MAX_PT)
		return -1;
	ctlen = len - EG_SEAL_OVERHEAD;
	c = EVP_CIPHER_CTX_new();
	if (!c)
		return -1;
	ok = EVP_DecryptInit_ex2(c, EVP_aes_256_gcm(), key, blob + 1, NULL) == 1;
	if (ok && aad && *aad)
		ok = EVP_DecryptUpdate(c, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) == 1;
	if (ok)
		ok = EVP_DecryptUpdate(c, out, &n, blob + 1 + NONCE_LEN, (int)ctlen) == 1;
	if (ok)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
					 (void *)(blob + 1 + NONCE_LEN + ctlen)) == 1;
	/* The tag is checked here; nothing decrypted is used unless it matches. */
	if (ok)
		ok = EVP_DecryptFinal_ex(c, out + n, &n) == 1;
	if (ok)
		total = (long)ctlen;
	else if (ctlen)
		OPENSSL_cleanse(out, ctlen);
	EVP_CIPHER_CTX_free(c);
	return total;
}

char *eg_seal(const uint8_t key[EG_SEAL_KEY_LEN], const char *aad, const void *pt, size_t len)
{
	uint8_t *blob;
	char *text = NULL;
	long n;

	if (len > MAX_PT)
		return NULL;
	blob = malloc(len + EG_SEAL_OVERHEAD);
	if (!blob)
		return NULL;
	n = eg_seal_raw(key, aad, pt, len, blob);
	if (n > 0) {
		text = malloc(b64url_encoded_len((size_t)n) + 1);
		if (text)
			b64url_encode(blob, (size_t)n, text);
	}
	free(blob);
	return text;
}

char *eg_unseal(const uint8_t key[EG_SEAL_KEY_LEN], const char *aad, const char *text,
		size_t text_len, size_t *out_len)
{
	uint8_t *blob;
	char *pt = NULL;
	long n, m;

	if (text_len > (MAX_PT / 3) * 4)
		return NULL;
	blob = malloc(b64url_decoded_max(text_len));
	if (!blob)
		return NULL;
	n = b64url_decode(text, text_len, blob);
	if (n >= EG_SEAL_OVERHEAD) {
		pt = malloc((size_t)n - EG_SEAL_OVERHEAD + 1);
		if (pt) {
			m = eg_unseal_raw(key, aad, blob, (size_t)n, (uint8_t *)pt);
			if (m < 0) {
				free(pt);
				pt = NULL;
			} else {
				pt[m] = 0;
				if (out_len)
					*out_len = (size_t)m;
			}
		}
	}
	free(blob);
	return pt;
}
