#define _POSIX_C_SOURCE 200809L

#include "wdt_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    r->max_body = (opts && opts->max_body) ? opts->max_body : WDT_HTTP_MAX_BODY_DEFAULT;

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
    SETOPT(CURLOPT_USERAGENT, "wdt-lua/0.1");
#if LIBCURL_VERSION_NUM >= 0x075500          /* 7.85.0 */
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (opts && opts->insecure) {
        SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
        SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
        if (opts && opts->ca_file)
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

static void fail_result(wdt_http_result *res, wdt_http_kind kind, int sent, const char *msg)
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
        fail_result(res, WDT_HTTP_NETWORK, 0, "HTTP client is not initialised");
        return -1;
    }
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    SETOPT(CURLOPT_POSTFIELDS, body);
    SETOPT(CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 0L);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms > 0 ? connect_timeout_ms : 0L);
    return 0;

fail:
    fail_result(res, WDT_HTTP_NETWORK, 0, "libcurl refused an option (bad URL?)");
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

    if (r->too_large) {
        snprintf(msg, sizeof msg, "answer larger than %zu bytes", r->max_body);
        fail_result(res, WDT_HTTP_TOO_LARGE, 1, msg);
    } else if (r->oom) {
        fail_result(res, WDT_HTTP_NETWORK, 1, "out of memory while reading the answer");
    } else {
        snprintf(msg, sizeof msg, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
        fail_result(res, rc == CURLE_OPERATION_TIMEDOUT ? WDT_HTTP_TIMEOUT : WDT_HTTP_NETWORK,
                    sent, msg);
    }
    wdt_buf_reset(&r->body);
}

wdt_http_kind wdt_http_post(wdt_http_req *r, const char *url, const char *body, size_t body_len,
                            long timeout_ms, long connect_timeout_ms, wdt_http_result *res)
{
    if (wdt_http_prepare(r, url, body, body_len, timeout_ms, connect_timeout_ms, res) != 0)
        return res->kind;
    wdt_http_finish(r, curl_easy_perform(r->easy), res);
    return res->kind;
}

void wdt_http_release_body(wdt_http_req *r)
{
    if (r->body.cap > WDT_HTTP_KEEP_BUF)
        wdt_buf_free(&r->body);
    else
        wdt_buf_reset(&r->body);
}

/* ---- the pool: one multi handle driving the client's easy handles ---------------------- */

static double mono_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CURLMOPT_SOCKETFUNCTION: keep p->pfds in step with what libcurl wants watched */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp)
{
    wdt_http_pool *p = ud;
    size_t i = 0;
    (void)e; (void)sockp;
    while (i < p->npfds && p->pfds[i].fd != fd)
        i++;
    if (what == CURL_POLL_REMOVE) {
        if (i < p->npfds)
            p->pfds[i] = p->pfds[--p->npfds];
        return 0;
    }
    if (i == p->npfds) {
        if (p->npfds == p->cap_pfds) {
            size_t cap = p->cap_pfds ? p->cap_pfds * 2 : 8;
            struct pollfd *n = realloc(p->pfds, cap * sizeof *n);
            if (n == NULL) {
                p->oom = 1;
                return -1;                    /* libcurl fails the transfer */
            }
            p->pfds = n;
            p->cap_pfds = cap;
        }
        p->npfds++;
        p->pfds[i].fd = fd;
    }
    p->pfds[i].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0)
                                | ((what & CURL_POLL_OUT) ? POLLOUT : 0));
    p->pfds[i].revents = 0;
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when libcurl next wants curl_multi_socket_action(TIMEOUT) */
static int on_timer(CURLM *m, long timeout_ms, void *ud)
{
    wdt_http_pool *p = ud;
    (void)m;
    p->timer_ms = timeout_ms;
    p->timer_at = timeout_ms >= 0 ? mono_now() + (double)timeout_ms / 1000.0 : 0.0;
    return 0;
}

int wdt_http_pool_init(wdt_http_pool *p, const wdt_http_opts *opts)
{
    memset(p, 0, sizeof *p);
    if (opts)
        p->opts = *opts;
    p->timer_ms = -1;
    p->multi = curl_multi_init();
    if (p->multi == NULL)
        return -1;
    if (curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK
        || curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p) != CURLM_OK
        || curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK
        || curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p) != CURLM_OK) {
        curl_multi_cleanup(p->multi);
        p->multi = NULL;
        return -1;
    }
    return 0;
}

void wdt_http_pool_free(wdt_http_pool *p)
{
    /* the multi handle owns the connection cache: clean it first (closes the connections),
     * then the easy handles, none of which is added to it between runs */
    if (p->multi)
        curl_multi_cleanup(p->multi);
    p->multi = NULL;
    for (size_t i = 0; i < p->n; i++) {
        wdt_http_free(p->reqs[i]);
        free(p->reqs[i]);
    }
    free(p->reqs);
    p->reqs = NULL;
    p->n = 0;
    free(p->pfds);
    p->pfds = NULL;
    p->npfds = p->cap_pfds = 0;
}

/* Make sure handles reqs[0..want-1] exist; the connection cache keeps one per handle. */
static int pool_grow(wdt_http_pool *p, size_t want)
{
    if (want <= p->n)
        return 0;
    wdt_http_req **nr = realloc(p->reqs, want * sizeof *nr);
    if (nr == NULL)
        return -1;
    p->reqs = nr;
    while (p->n < want) {
        wdt_http_req *r = malloc(sizeof *r);
        if (r == NULL)
            return -1;
        if (wdt_http_init(r, &p->opts) != 0) {
            free(r);
            return -1;
        }
        p->reqs[p->n++] = r;
    }
    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, (long)p->n);
    return 0;
}

/* Wait for the watched sockets or libcurl's timer (at most 1 s), then let libcurl run the
 * transfers that can move. */
static CURLMcode pool_step(wdt_http_pool *p)
{
    int running = 0;
    long wait_ms = 1000;
    if (p->timer_ms >= 0) {
        double left = p->timer_at - mono_now();
        wait_ms = left <= 0 ? 0 : (long)(left * 1000.0) + 1;
        if (wait_ms > 1000)
            wait_ms = 1000;
    }
    int ready = 0;
    if (wait_ms > 0 || p->npfds > 0) {
        ready = poll(p->pfds, (nfds_t)p->npfds, (int)wait_ms);
        if (ready < 0 && errno != EINTR)
            return CURLM_INTERNAL_ERROR;
    }
    if (ready > 0) {
        /* libcurl may change p->pfds from inside socket_action: act on a copy */
        curl_socket_t fds[64];
        int bits[64];
        size_t k = 0;
        for (size_t i = 0; i < p->npfds && k < 64; i++) {
            short re = p->pfds[i].revents;
            if (re == 0)
                continue;
            fds[k] = p->pfds[i].fd;
            bits[k] = ((re & (POLLIN | POLLHUP)) ? CURL_CSELECT_IN : 0)
                    | ((re & POLLOUT) ? CURL_CSELECT_OUT : 0)
                    | ((re & (POLLERR | POLLNVAL)) ? CURL_CSELECT_ERR : 0);
            k++;
        }
        for (size_t i = 0; i < k; i++) {
            CURLMcode mc = curl_multi_socket_action(p->multi, fds[i], bits[i], &running);
            if (mc != CURLM_OK)
                return mc;
        }
    }
    if (p->timer_ms >= 0 && p->timer_at <= mono_now()) {
        p->timer_ms = -1;                     /* libcurl sets it again when it needs it */
        return curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    return CURLM_OK;
}

/* take: move each answer into its job (a batch); otherwise leave it in the handle (post) */
static int pool_drive(wdt_http_pool *p, wdt_http_job *jobs, size_t njobs, size_t conc,
                      long timeout_ms, long connect_timeout_ms, int take)
{
    size_t slot_job[WDT_HTTP_MAX_CONCURRENCY];
    unsigned char busy[WDT_HTTP_MAX_CONCURRENCY];
    size_t next = 0, inflight = 0;
    const char *fatal = NULL;

    for (size_t i = 0; i < njobs; i++) {
        memset(&jobs[i].res, 0, sizeof jobs[i].res);
        wdt_buf_init(&jobs[i].answer);
        jobs[i].date[0] = '\0';
    }
    if (conc < 1)
        conc = 1;
    if (conc > WDT_HTTP_MAX_CONCURRENCY)
        conc = WDT_HTTP_MAX_CONCURRENCY;
    if (conc > njobs)
        conc = njobs;
    if (njobs == 0)
        return 0;
    if (p->multi == NULL || pool_grow(p, conc) != 0) {
        for (size_t i = 0; i < njobs; i++)
            fail_result(&jobs[i].res, WDT_HTTP_NETWORK, 0,
                        "cannot create the libcurl handles (out of memory?)");
        return -1;
    }
    memset(busy, 0, sizeof busy);

    for (;;) {
        /* start queued jobs on the free handles */
        for (size_t s = 0; s < conc; s++) {
            while (!busy[s] && next < njobs) {
                wdt_http_job *j = &jobs[next++];
                wdt_http_req *r = p->reqs[s];
                if (wdt_http_prepare(r, j->url, j->body, j->body_len,
                                     j->timeout_ms > 0 ? j->timeout_ms : timeout_ms,
                                     j->connect_timeout_ms > 0 ? j->connect_timeout_ms
                                                               : connect_timeout_ms,
                                     &j->res) != 0)
                    continue;                 /* j->res says why; next job on this slot */
                curl_easy_setopt(r->easy, CURLOPT_FRESH_CONNECT, j->fresh_connect ? 1L : 0L);
                CURLMcode mc = curl_multi_add_handle(p->multi, r->easy);
                if (mc != CURLM_OK) {
                    fail_result(&j->res, WDT_HTTP_NETWORK, 0, curl_multi_strerror(mc));
                    continue;
                }
                busy[s] = 1;
                slot_job[s] = (size_t)(j - jobs);
                inflight++;
            }
        }
        if (inflight == 0)
            break;

        CURLMcode mc = pool_step(p);
        if (mc != CURLM_OK) {
            fatal = curl_multi_strerror(mc);
            break;
        }
        int queued = 0;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(p->multi, &queued)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            CURLcode rc = msg->data.result;   /* read before the handle is removed */
            size_t s = 0;
            while (s < conc && !(busy[s] && p->reqs[s]->easy == e))
                s++;
            curl_multi_remove_handle(p->multi, e);
            if (s == conc)
                continue;                     /* not ours: cannot happen */
            wdt_http_req *r = p->reqs[s];
            wdt_http_job *j = &jobs[slot_job[s]];
            wdt_http_finish(r, rc, &j->res);
            if (j->res.kind == WDT_HTTP_OK) {
                memcpy(j->date, r->date, sizeof j->date);
                if (take) {                   /* hand the buffer over, no copy */
                    j->answer = r->body;
                    wdt_buf_init(&r->body);
                }
            }
            busy[s] = 0;
            inflight--;
        }
    }

    if (fatal) {                              /* the multi handle failed: fail what is left */
        for (size_t s = 0; s < conc; s++) {
            if (!busy[s])
                continue;
            curl_multi_remove_handle(p->multi, p->reqs[s]->easy);
            fail_result(&jobs[slot_job[s]].res, WDT_HTTP_NETWORK, p->reqs[s]->reached, fatal);
            wdt_buf_reset(&p->reqs[s]->body);
        }
        for (; next < njobs; next++)
            fail_result(&jobs[next].res, WDT_HTTP_NETWORK, 0, fatal);
    }
    return 0;
}

wdt_http_kind wdt_http_pool_post(wdt_http_pool *p, const char *url, const char *body,
                                 size_t body_len, long timeout_ms, long connect_timeout_ms,
                                 int fresh_connect, wdt_http_result *res)
{
    wdt_http_job j;
    j.url = url;
    j.body = body;
    j.body_len = body_len;
    j.fresh_connect = fresh_connect;
    j.timeout_ms = 0;
    j.connect_timeout_ms = 0;
    pool_drive(p, &j, 1, 1, timeout_ms, connect_timeout_ms, 0);
    *res = j.res;
    return res->kind;
}

int wdt_http_pool_run(wdt_http_pool *p, wdt_http_job *jobs, size_t njobs, size_t concurrency,
                      long timeout_ms, long connect_timeout_ms)
{
    return pool_drive(p, jobs, njobs, concurrency, timeout_ms, connect_timeout_ms, 1);
}
