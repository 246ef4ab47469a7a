/* One signed request's URL: the credentials' fixed URL prefix and, per try, the signed
 * query. No Lua here. The URL is taken as given: wdt.client checked it (one rule, in Lua). */
#ifndef WDT_REQUEST_H
#define WDT_REQUEST_H

#include <stddef.h>

#include "wdt_buf.h"
#include "wdt_sign.h"

/* Who signs: borrowed pointers, owned by the client userdata. */
typedef struct wdt_identity {
    const char *sid;     size_t sid_len;
    const char *key;     size_t key_len;
    const char *secret;  size_t secret_len;
    const char *salt;    size_t salt_len;
    const char *url_prefix; size_t url_prefix_len;   /* from wdt_request_url_prefix */
} wdt_identity;

/* The paging parameters of one try; paged == 0: none. */
typedef struct wdt_request_page {
    int       paged;
    long long page_size;
    long long page_no;
    int       calc_total;
} wdt_request_page;

/* base?sid=..&key=..&salt=..&method= (the part of every URL that does not change), sized
 * up front so no realloc leaves a copy of the salt behind. NULL when out of memory; free
 * it with wdt_request_wipe_free (it holds the salt). */
char *wdt_request_url_prefix(const char *url, size_t url_len, const wdt_identity *id,
                             size_t *len);
void wdt_request_wipe_free(char *p, size_t len);

/* Sign method + body + page + timestamp and write the whole URL into q (reset first):
 * prefix + method &v=1.0&timestamp=..[&page_size=..&page_no=..&calc_total=..]&sign=..
 * 0; -1 out of memory; -2 MD5 unavailable. */
int wdt_request_url(wdt_buf *q, wdt_signer *signer, const wdt_identity *id,
                    const char *method, size_t method_len, const char *body, size_t body_len,
                    const wdt_request_page *page, long long timestamp);

/* Decimal digits of v and a NUL into out (at least 22 bytes); returns the length. */
size_t wdt_fmt_int(char *out, long long v);

/* Overwrite what a buffer holds (a URL holds the salt), then empty it. */
void wdt_buf_wipe_used(wdt_buf *b);

#endif
