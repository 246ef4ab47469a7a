#include "wdt_sign.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

int wdt_param_cmp(const void *a, const void *b)
{
    const wdt_param *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = n ? memcmp(x->key, y->key, n) : 0;
    if (c != 0)
        return c;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

int wdt_sign(const char *secret, size_t secret_len, wdt_param *params, size_t n, char hex[33])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    int ok;

    hex[0] = '\0';
    if (n > 1)
        qsort(params, n, sizeof *params, wdt_param_cmp);

    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return -1;
    ok = EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1
      && EVP_DigestUpdate(ctx, secret, secret_len) == 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(ctx, params[i].key, params[i].key_len) == 1
          && EVP_DigestUpdate(ctx, params[i].val, params[i].val_len) == 1;
    ok = ok
      && EVP_DigestUpdate(ctx, secret, secret_len) == 1
      && EVP_DigestFinal_ex(ctx, md, &md_len) == 1
      && md_len == 16;
    EVP_MD_CTX_free(ctx);           /* also cleanses the context state */
    if (!ok)
        return -1;
    for (unsigned i = 0; i < 16; i++) {
        hex[2 * i]     = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[32] = '\0';
    return 0;
}
