/* wdt_http.c: one request on one libcurl easy handle (contract in wdt_http.h): the
 * handle's fixed options, the body/header callbacks, the per-request set-up, and turning
 * a finished transfer into a wdt_http_result (kind, status, `sent`, a message that never
 * quotes the query string). Nothing here knows of the pool (wdt_http_pool.c). No Lua here.
 */
#define _POSIX_C_SOURCE 200809L

#include "wdt_http_internal.h"

#include <stdio.h>
#include <string.h>

#define WDT_HTTP_KEEP_BUF ((size_t)1024 * 1024)   /* keep at most this much memory between calls */

int wdt_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* ---- callbacks: they only touch the request struct and never leave by longjmp ------- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    wdt_http_req *r = ud;
    size_t n = size * nmemb;
    if (n > r->max_body || r->body.len > r->max_body - n) {
        r->too_large = 1;
        return 0;                             /* != n: libcurl aborts with CURLE_WRITE_ERROR */
    }
    if (wdt_buf_append(&r->body, p, n) != 0) {
        r->oom = 1;
        return 0;
    }
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    wdt_http_req *r = ud;
    size_t n = size * nmemb;

    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        r->date[0] = '\0';                    /* a new response (after 1xx): forget the old */
    } else if (n > 5 && (p[0] | 0x20) == 'd' && (p[1] | 0x20) == 'a' && (p[2] | 0x20) == 't'
               && (p[3] | 0x20) == 'e' && p[4] == ':') {
        size_t i = 5, j = n;
        while (i < j && (p[i] == ' ' || p[i] == '\t'))
            i++;
        while (j > i && (p[j - 1] == '\r' || p[j - 1] == '\n' || p[j - 1] == ' ' || p[j - 1] == '\t'))
            j--;
        if (j - i >= sizeof r->date)
            j = i + sizeof r->date - 1;
        memcpy(r->date, p + i, j - i);
        r->date[j - i] = '\0';
    }
    return n;
}

#if LIBCURL_VERSION_NUM >= 0x075000          /* 7.80.0: CURLOPT_PREREQFUNCTION */
static int on_prereq(void *ud, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port)
{
    (void)conn_primary_ip; (void)conn_local_ip; (void)conn_primary_port; (void)conn_local_port;
    ((wdt_http_req *)ud)->reached = 1;
    return CURL_PREREQFUNC_OK;
}
#endif

/* ---- setup ---------------------------------------------------------------------------- */

#define SETOPT(opt, val) do { if (curl_easy_setopt(r->easy, opt, val) != CURLE_OK) goto fail; } while (0)

int wdt_http_init(wdt_http_req *r, const wdt_http_opts *opts)
{
    memset(r, 0, sizeof *r);
    wdt_buf_init(&r->body);
    r->max_body = opts->max_body;

    r->easy = curl_easy_init();
    if (r->easy == NULL)
        return -1;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h == NULL)
        goto fail;
    r->headers = h;
    h = curl_slist_append(r->headers, "Expect:");          /* no 100-continue round trip */
    if (h == NULL)
        goto fail;
    r->headers = h;

    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_ERRORBUFFER, r->errbuf);
    SETOPT(CURLOPT_HTTPHEADER, r->headers);
    SETOPT(CURLOPT_ACCEPT_ENCODING, "");                   /* every encoding libcurl knows */
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, r);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, r);
#if LIBCURL_VERSION_NUM >= 0x075000
    SETOPT(CURLOPT_PREREQFUNCTION, on_prereq);
    SETOPT(CURLOPT_PREREQDATA, r);
#endif
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_USERAGENT, "wdt-lua/" WDT_VERSION);   /* CMakeLists.txt's version */
#if LIBCURL_VERSION_NUM >= 0x075500          /* 7.85.0 */
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (opts->insecure) {
        SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
        SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
        if (opts->ca_file)
            SETOPT(CURLOPT_CAINFO, opts->ca_file);
    }
    return 0;

fail:
    wdt_http_free(r);
    return -1;
}

void wdt_http_free(wdt_http_req *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    r->easy = NULL;
    if (r->headers)
        curl_slist_free_all(r->headers);
    r->headers = NULL;
    wdt_buf_free(&r->body);
}

/* ---- results ------------------------------------------------------------------------- */

/* Copy a libcurl message, dropping any query string it might quote: the query holds the
 * salt and the sign. */
static void set_message(wdt_http_result *res, const char *msg)
{
    size_t o = 0;
    for (const char *p = msg; *p && o + 1 < sizeof res->message; p++) {
        if (*p == '?') {
            while (p[1] && p[1] != ' ' && p[1] != '\'' && p[1] != '"' && p[1] != '\n')
                p++;
            continue;
        }
        res->message[o++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
    }
    while (o > 0 && res->message[o - 1] == ' ')
        o--;
    res->message[o] = '\0';
}

void wdt_http_fail_result(wdt_http_result *res, wdt_http_kind kind, int sent, const char *msg)
{
    res->kind = kind;
    res->status = 0;
    res->sent = sent;
    set_message(res, msg);
}

int wdt_http_prepare(wdt_http_req *r, const char *url, const char *body, size_t body_len,
                     long timeout_ms, long connect_timeout_ms, wdt_http_result *res)
{
    wdt_buf_reset(&r->body);
    r->too_large = 0;
    r->oom = 0;
    r->reached = 0;
    r->date[0] = '\0';
    r->errbuf[0] = '\0';

    if (r->easy == NULL) {
        wdt_http_fail_result(res, WDT_HTTP_NETWORK, 0, "HTTP client is not initialised");
        return -1;
    }
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    SETOPT(CURLOPT_POSTFIELDS, body);
    SETOPT(CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 0L);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms > 0 ? connect_timeout_ms : 0L);
    return 0;

fail:
    wdt_http_fail_result(res, WDT_HTTP_NETWORK, 0, "libcurl refused an option (bad URL?)");
    return -1;
}

void wdt_http_finish(wdt_http_req *r, CURLcode rc, wdt_http_result *res)
{
    char msg[CURL_ERROR_SIZE + 64];
    int sent;

    res->kind = WDT_HTTP_OK;
    res->status = 0;
    res->sent = 1;
    res->message[0] = '\0';

    if (rc == CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
        res->status = code;
        return;
    }

    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST
        || rc == CURLE_COULDNT_RESOLVE_PROXY) {
        sent = 0;
    } else {
#if LIBCURL_VERSION_NUM >= 0x075000
        sent = r->reached;                    /* the connection (and TLS) was ready */
#else
        long req_size = 0;
        curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &req_size);
        sent = rc == CURLE_OPERATION_TIMEDOUT ? req_size > 0 : 1;
#endif
    }

    switch (rc) {                             /* certificates and TLS set-up: final */
    case CURLE_PEER_FAILED_VERIFICATION:      /* (and CURLE_SSL_CACERT, an alias since 7.62) */
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
        snprintf(msg, sizeof msg, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
        wdt_http_fail_result(res, WDT_HTTP_TLS, 0, msg);
        wdt_buf_reset(&r->body);
        return;
    default:
        break;
    }

    if (r->too_large) {
        snprintf(msg, sizeof msg, "answer larger than %zu bytes", r->max_body);
        wdt_http_fail_result(res, WDT_HTTP_TOO_LARGE, 1, msg);
    } else if (r->oom) {
        wdt_http_fail_result(res, WDT_HTTP_NETWORK, 1,
                             "out of memory while reading the answer");
    } else {
        snprintf(msg, sizeof msg, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
        wdt_http_fail_result(res, rc == CURLE_OPERATION_TIMEDOUT ? WDT_HTTP_TIMEOUT
                                                                 : WDT_HTTP_NETWORK,
                             sent, msg);
    }
    wdt_buf_reset(&r->body);
}

void wdt_http_release_body(wdt_http_req *r)
{
    if (r->body.cap > WDT_HTTP_KEEP_BUF)
        wdt_buf_free(&r->body);
    else
        wdt_buf_reset(&r->body);
}
