/* The WDT request signature: canonical string + MD5 through OpenSSL EVP. No Lua here.
 *
 *   sign = md5_hex(secret + k1 + v1 + k2 + v2 + ... + secret)
 *
 * over every public parameter except `sign` plus one entry `body` (the exact body bytes),
 * sorted by key byte-wise ascending. */
#ifndef WDT_SIGN_H
#define WDT_SIGN_H

#include <stddef.h>

typedef struct wdt_param {
    const char *key;
    size_t      key_len;
    const char *val;
    size_t      val_len;
} wdt_param;

/* A reusable MD5 context (one per client): initialised once, then only re-initialised,
 * which costs a fraction of a fresh EVP context. Zero-initialised = empty; the context is
 * created on first use. Not for use from two threads at once. */
typedef struct wdt_signer {
    void *ctx;                /* EVP_MD_CTX *, NULL until the first signature */
} wdt_signer;

void wdt_signer_free(wdt_signer *s);

/* Sort params by key (byte-wise, in place), hash secret + k1 v1 k2 v2 ... + secret with
 * MD5 through OpenSSL EVP, write 32 lowercase hex digits and a NUL into hex.
 * 0 on success, -1 when the digest failed (hex is then the empty string). */
int wdt_sign(const char *secret, size_t secret_len, wdt_param *params, size_t n, char hex[33]);

/* The same over params already in wdt_param_cmp order (not checked), with the context of
 * `s` (NULL: a temporary one). */
int wdt_sign_sorted(wdt_signer *s, const char *secret, size_t secret_len,
                    const wdt_param *params, size_t n, char hex[33]);

/* Byte-wise key order used by wdt_sign (memcmp, then the shorter key first). */
int wdt_param_cmp(const void *a, const void *b);

#endif
