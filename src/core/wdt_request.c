/* wdt_request.c: the URL of one signed try (see wdt_request.h). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "wdt_request.h"

/* RFC 3986 unreserved characters: A-Z a-z 0-9 - . _ ~ */
static int unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')
        || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

static int pct_encode(wdt_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (wdt_buf_reserve(b, n * 3) != 0)
        return -1;
    char *o = b->data + b->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (unreserved(ch)) {
            *o++ = (char)ch;
        } else {
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}

/* sep ('?' or '&') then "k=v", v percent-encoded */
static int put_param(wdt_buf *b, char sep, const char *k, const char *v, size_t vlen)
{
    if (wdt_buf_putc(b, sep) != 0 || wdt_buf_puts(b, k) != 0 || wdt_buf_putc(b, '=') != 0)
        return -1;
    return pct_encode(b, v, vlen);
}

size_t wdt_fmt_int(char *out, long long v)
{
    char tmp[24];
    size_t n = 0, len = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    out[len] = '\0';
    return len;
}

void wdt_buf_wipe_used(wdt_buf *b)
{
    if (b->data)
        OPENSSL_cleanse(b->data, b->len + 1);
    b->len = 0;
}

void wdt_request_wipe_free(char *p, size_t len)
{
    if (p)
        OPENSSL_cleanse(p, len + 1);
    free(p);
}

char *wdt_request_url_prefix(const char *url, size_t url_len, const wdt_identity *id,
                             size_t *len)
{
    wdt_buf b;
    int oom = 0;
    wdt_buf_init(&b);
    if (wdt_buf_reserve(&b, url_len + 3 * (id->sid_len + id->key_len + id->salt_len) + 32) != 0)
        return NULL;
    oom |= wdt_buf_append(&b, url, url_len);
    oom |= put_param(&b, '?', "sid", id->sid, id->sid_len);
    oom |= put_param(&b, '&', "key", id->key, id->key_len);
    oom |= put_param(&b, '&', "salt", id->salt, id->salt_len);
    oom |= wdt_buf_puts(&b, "&method=");
    if (oom) {
        wdt_buf_wipe_used(&b);
        wdt_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

int wdt_request_url(wdt_buf *q, wdt_signer *signer, const wdt_identity *id,
                    const char *method, size_t method_len, const char *body, size_t body_len,
                    const wdt_request_page *page, long long timestamp)
{
    /* the public parameters and the sign, in wdt_param_cmp order (no sort needed):
     * body calc_total key method page_no page_size salt sid timestamp v */
    char ts_s[24], ps_s[24], pn_s[24];
    size_t ts_len = wdt_fmt_int(ts_s, timestamp), ps_len = 0, pn_len = 0;
    const char *calc = page->calc_total ? "1" : "0";
    wdt_param p[10];
    size_t np = 0;
    int oom = 0;
#define ADD(k, v, vl) (p[np].key = (k), p[np].key_len = sizeof(k) - 1, p[np].val = (v), p[np].val_len = (vl), np++)
    ADD("body", body, body_len);
    if (page->paged) {
        ps_len = wdt_fmt_int(ps_s, page->page_size);
        pn_len = wdt_fmt_int(pn_s, page->page_no);
        ADD("calc_total", calc, 1);
    }
    ADD("key", id->key, id->key_len);
    ADD("method", method, method_len);
    if (page->paged) {
        ADD("page_no", pn_s, pn_len);
        ADD("page_size", ps_s, ps_len);
    }
    ADD("salt", id->salt, id->salt_len);
    ADD("sid", id->sid, id->sid_len);
    ADD("timestamp", ts_s, ts_len);
    ADD("v", "1.0", 3);
#undef ADD
    char sign[33];
    if (wdt_sign_sorted(signer, id->secret, id->secret_len, p, np, sign) != 0)
        return -2;

    wdt_buf_wipe_used(q);
    oom |= wdt_buf_append(q, id->url_prefix, id->url_prefix_len);
    oom |= pct_encode(q, method, method_len);
    oom |= wdt_buf_append(q, "&v=1.0&timestamp=", 17);
    oom |= wdt_buf_append(q, ts_s, ts_len);
    if (page->paged) {
        oom |= wdt_buf_append(q, "&page_size=", 11);
        oom |= wdt_buf_append(q, ps_s, ps_len);
        oom |= wdt_buf_append(q, "&page_no=", 9);
        oom |= wdt_buf_append(q, pn_s, pn_len);
        oom |= wdt_buf_append(q, page->calc_total ? "&calc_total=1" : "&calc_total=0", 13);
    }
    oom |= wdt_buf_append(q, "&sign=", 6);
    oom |= wdt_buf_append(q, sign, 32);
    OPENSSL_cleanse(sign, sizeof sign);
    if (oom) {
        wdt_buf_wipe(q);
        return -1;
    }
    return 0;
}
