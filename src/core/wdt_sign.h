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

/* Sort params by key (byte-wise, in place), hash secret + k1 v1 k2 v2 ... + secret with
 * MD5 through OpenSSL EVP, write 32 lowercase hex digits and a NUL into hex.
 * 0 on success, -1 when the digest failed (hex is then the empty string). */
int wdt_sign(const char *secret, size_t secret_len, wdt_param *params, size_t n, char hex[33]);

/* Byte-wise key order used by wdt_sign (memcmp, then the shorter key first). */
int wdt_param_cmp(const void *a, const void *b);

#endif
