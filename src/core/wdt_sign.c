#include "wdt_sign.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/* MD5 from OpenSSL. OpenSSL 3 looks the implementation up (EVP_MD_fetch) on every
 * EVP_DigestInit_ex given EVP_md5(): fetch it once and keep it. Lock-free: a thread that
 * loses the race frees its own copy. When the fetch fails, EVP_md5() as before (and the
 * init then fails the same way it always did). */
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <stdatomic.h>

static _Atomic(EVP_MD *) md5_impl;

static const EVP_MD *md5(void)
{
    EVP_MD *m = atomic_load_explicit(&md5_impl, memory_order_acquire);
    if (m == NULL) {
        EVP_MD *fresh = EVP_MD_fetch(NULL, "MD5", NULL), *expected = NULL;
        if (fresh == NULL)
            return EVP_md5();
        if (atomic_compare_exchange_strong(&md5_impl, &expected, fresh)) {
            m = fresh;
        } else {
            EVP_MD_free(fresh);
            m = expected;
        }
    }
    return m;
}
/* A context that has hashed once is re-initialised with its own digest (type NULL): that
 * keeps the provider's context instead of freeing and fetching it again. */
#define REINIT_TYPE NULL
#else
static const EVP_MD *md5(void)
{
    return EVP_md5();
}
#define REINIT_TYPE EVP_md5()
#endif

int wdt_param_cmp(const void *a, const void *b)
{
    const wdt_param *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = n ? memcmp(x->key, y->key, n) : 0;
    if (c != 0)
        return c;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

void wdt_signer_free(wdt_signer *s)
{
    if (s->ctx)
        EVP_MD_CTX_free((EVP_MD_CTX *)s->ctx);
    s->ctx = NULL;
}

/* The canonical string is fed through a small buffer: the keys and short values (and the
 * secret) are gathered into few EVP_DigestUpdate calls; a long value (the body, most of
 * the time) goes to EVP_DigestUpdate where it lies, never copied. The buffer holds the
 * secret: every flush cleanses what it held. */
#define FEED_DIRECT 256             /* pieces longer than this are not copied */

typedef struct feed {
    EVP_MD_CTX   *ctx;
    int           ok;
    size_t        len;
    unsigned char buf[1024];
} feed;

static void feed_flush(feed *f)
{
    if (f->len) {
        if (f->ok)
            f->ok = EVP_DigestUpdate(f->ctx, f->buf, f->len) == 1;
        OPENSSL_cleanse(f->buf, f->len);
    }
    f->len = 0;
}

static void feed_put(feed *f, const void *p, size_t n)
{
    if (n > FEED_DIRECT) {
        feed_flush(f);
        if (f->ok)
            f->ok = EVP_DigestUpdate(f->ctx, p, n) == 1;
        return;
    }
    if (n > sizeof f->buf - f->len)
        feed_flush(f);
    if (n) {
        memcpy(f->buf + f->len, p, n);
        f->len += n;
    }
}

int wdt_sign_sorted(wdt_signer *s, const char *secret, size_t secret_len,
                    const wdt_param *params, size_t n, char hex[33])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    feed f;

    hex[0] = '\0';
    f.len = 0;
    if (s != NULL && s->ctx != NULL) {
        f.ctx = (EVP_MD_CTX *)s->ctx;
        f.ok = EVP_DigestInit_ex(f.ctx, REINIT_TYPE, NULL) == 1;
    } else {
        f.ctx = EVP_MD_CTX_new();
        if (f.ctx == NULL)
            return -1;
        f.ok = EVP_DigestInit_ex(f.ctx, md5(), NULL) == 1;
    }
    feed_put(&f, secret, secret_len);
    for (size_t i = 0; i < n; i++) {
        feed_put(&f, params[i].key, params[i].key_len);
        feed_put(&f, params[i].val, params[i].val_len);
    }
    feed_put(&f, secret, secret_len);
    feed_flush(&f);                      /* and cleanses the buffer */
    f.ok = f.ok
      && EVP_DigestFinal_ex(f.ctx, md, &md_len) == 1   /* also cleanses the MD5 state */
      && md_len == 16;
    if (s != NULL && f.ok) {
        s->ctx = f.ctx;                  /* kept for the next signature */
    } else {
        EVP_MD_CTX_free(f.ctx);          /* also cleanses the context state */
        if (s != NULL)
            s->ctx = NULL;               /* after a failure: start afresh next time */
    }
    if (!f.ok)
        return -1;
    for (unsigned i = 0; i < 16; i++) {
        hex[2 * i]     = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[32] = '\0';
    return 0;
}

int wdt_sign(const char *secret, size_t secret_len, wdt_param *params, size_t n, char hex[33])
{
    if (n > 1)
        qsort(params, n, sizeof *params, wdt_param_cmp);
    return wdt_sign_sorted(NULL, secret, secret_len, params, n, hex);
}
