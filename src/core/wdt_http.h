/* HTTP POST over libcurl for the C core. No Lua here.
 *
 * A `wdt_http_req` is one easy handle plus all the state of one request on it: the answer
 * buffer, the `Date` header, the size cap, the error buffer. A client keeps one and reuses
 * it, so libcurl keeps the connection alive between calls. Every field a transfer touches
 * lives in the struct (no globals), so several of them can be driven by one curl multi
 * handle for a batch:
 *
 *     wdt_http_prepare(r, ...)  -> curl_multi_add_handle(m, r->easy)
 *     ... curl_multi_perform / curl_multi_poll ...
 *     on CURLMSG_DONE for r->easy: curl_multi_remove_handle(m, r->easy);
 *                                   wdt_http_finish(r, msg->data.result, &res)
 *
 * wdt_http_post() is prepare + curl_easy_perform + finish.
 */
#ifndef WDT_HTTP_H
#define WDT_HTTP_H

#include <stddef.h>
#include <curl/curl.h>

#include "wdt_buf.h"

#define WDT_HTTP_MAX_BODY_DEFAULT ((size_t)64 * 1024 * 1024)

typedef enum wdt_http_kind {
    WDT_HTTP_OK = 0,
    WDT_HTTP_NETWORK,        /* could not connect, reset, TLS failure, out of memory, ... */
    WDT_HTTP_TIMEOUT,        /* connect timeout or total timeout */
    WDT_HTTP_TOO_LARGE       /* the (decompressed) answer exceeded max_body */
} wdt_http_kind;

/* Fixed for the life of a handle: read by wdt_http_init() only. */
typedef struct wdt_http_opts {
    size_t      max_body;            /* 0: WDT_HTTP_MAX_BODY_DEFAULT */
    const char *ca_file;             /* NULL: the system's CA store (copied by libcurl) */
    int         insecure;            /* nonzero: do not verify the peer or the host name */
} wdt_http_opts;

typedef struct wdt_http_req {
    CURL              *easy;
    struct curl_slist *headers;       /* Content-Type, empty Expect */
    wdt_buf            body;          /* the answer, decompressed */
    size_t             max_body;
    int                too_large;     /* set by the write callback */
    int                oom;           /* set by the write callback */
    int                reached;       /* set once a connection is ready to take the request */
    char               date[64];      /* the Date header, "" when absent */
    char               errbuf[CURL_ERROR_SIZE];
} wdt_http_req;

typedef struct wdt_http_result {
    wdt_http_kind kind;
    long          status;             /* HTTP status when kind == WDT_HTTP_OK */
    int           sent;               /* 0: the request never left (refused, DNS, connect
                                         timeout, TLS handshake); 1: it may have arrived */
    char          message[256];       /* on failure; never holds the URL's query string */
} wdt_http_result;

/* Once per process, before any other call (curl_global_init). 0 or -1. */
int  wdt_http_global_init(void);

/* Create the easy handle and set the fixed options (opts may be NULL for the defaults).
 * 0, or -1 (out of memory / libcurl refused an option). */
int  wdt_http_init(wdt_http_req *r, const wdt_http_opts *opts);
/* Free everything; the struct can be init'ed again. Safe on a zeroed or freed struct. */
void wdt_http_free(wdt_http_req *r);

/* Set up one POST on r->easy. `url` and `body` are NOT copied: they must stay valid until
 * wdt_http_finish(). Timeouts in milliseconds; <= 0 means libcurl's default (none for the
 * total, 300 s for the connect). Clears the previous answer. 0, or -1 with res filled in. */
int  wdt_http_prepare(wdt_http_req *r, const char *url, const char *body, size_t body_len,
                      long timeout_ms, long connect_timeout_ms, wdt_http_result *res);
/* Turn the transfer's CURLcode into a result. On WDT_HTTP_OK the answer is in r->body and
 * the Date header in r->date. */
void wdt_http_finish(wdt_http_req *r, CURLcode rc, wdt_http_result *res);

/* Blocking POST: prepare + curl_easy_perform + finish. Returns res->kind. */
wdt_http_kind wdt_http_post(wdt_http_req *r, const char *url, const char *body, size_t body_len,
                            long timeout_ms, long connect_timeout_ms, wdt_http_result *res);

/* After the answer was consumed: drop its bytes (and give back a large buffer's memory). */
void wdt_http_release_body(wdt_http_req *r);

#endif
