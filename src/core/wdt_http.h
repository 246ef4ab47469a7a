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
 * One request on one handle is wdt_http.c; the pool below (one multi handle driving a
 * client's easy handles) is wdt_http_pool.c.
 */
#ifndef WDT_HTTP_H
#define WDT_HTTP_H

#include <stddef.h>
#include <poll.h>
#include <curl/curl.h>

#include "wdt_buf.h"

typedef enum wdt_http_kind {
    WDT_HTTP_OK = 0,
    WDT_HTTP_NETWORK,        /* could not connect, reset, TLS failure, out of memory, ... */
    WDT_HTTP_TIMEOUT,        /* connect timeout or total timeout */
    WDT_HTTP_TOO_LARGE,      /* the (decompressed) answer exceeded max_body */
    WDT_HTTP_TLS             /* the peer's certificate failed verification, or the local
                                TLS set-up (ca_file, ...) is unusable: never sent, and
                                final (another try fails the same way) */
} wdt_http_kind;

/* Fixed for the life of a handle: read by wdt_http_init() only. */
typedef struct wdt_http_opts {
    size_t      max_body;            /* bytes, >= 1 (wdt.options defaults it) */
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

/* Create the easy handle and set the fixed options.
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

/* After the answer was consumed: drop its bytes (and give back a large buffer's memory). */
void wdt_http_release_body(wdt_http_req *r);


/* ---- a pool: one multi handle, its easy handles, one connection cache ---------------------
 *
 * A client's transfers all go through one pool, so a connection opened by a batch is reused
 * by the next single call and the reverse: a client opens at most as many connections as
 * the largest concurrency it used (1 for sequential calls). Single POSTs ride reqs[0].
 * The pool owns the struct's address from init to free (libcurl keeps pointers to it).
 */
#define WDT_HTTP_MAX_CONCURRENCY 256

typedef struct wdt_http_job {
    const char     *url;              /* in: not copied, valid until the run returns */
    const char     *body;
    size_t          body_len;
    int             fresh_connect;    /* in: nonzero: on a new connection (a write that
                                         must not be sent twice, see doc/reliability.md) */
    long            timeout_ms;       /* in: > 0 overrides the run's timeouts */
    long            connect_timeout_ms;
    wdt_http_result res;              /* out */
    wdt_buf         answer;           /* out on WDT_HTTP_OK: the answer; owned by the job
                                         (wdt_buf_free it) */
    char            date[64];         /* out: the Date header, "" when absent */
} wdt_http_job;

typedef struct wdt_http_pool {
    CURLM         *multi;
    wdt_http_req **reqs;              /* reqs[0..n-1], created on demand, never moved */
    size_t         n;
    wdt_http_opts  opts;              /* ca_file is not copied: it must outlive the pool */
    /* the sockets libcurl asks to watch (CURLMOPT_SOCKETFUNCTION) and its timer: the
     * pool drives libcurl with curl_multi_socket_action, so only the transfers whose
     * socket is ready run, without libcurl polling each socket again */
    struct pollfd *pfds;
    size_t         npfds, cap_pfds;
    long           timer_ms;          /* -1: none; else due at timer_at */
    double         timer_at;
    int            oom;               /* the socket set could not grow */
    /* transfers started one at a time (wdt_http_pool_start), each on the handle of its
     * slot until wdt_http_pool_wait hands it back */
    wdt_http_job  *active[WDT_HTTP_MAX_CONCURRENCY];
    size_t         nactive;
} wdt_http_pool;

/* 0, or -1 (out of memory). No easy handle is created yet. */
int  wdt_http_pool_init(wdt_http_pool *p, const wdt_http_opts *opts);
/* Close the connections and free everything. Safe on a zeroed or freed struct. */
void wdt_http_pool_free(wdt_http_pool *p);

/* Blocking POST on p->reqs[0] through the multi handle: the answer is
 * in p->reqs[0]->body (release it with wdt_http_release_body) and the Date in ->date. */
wdt_http_kind wdt_http_pool_post(wdt_http_pool *p, const char *url, const char *body,
                                 size_t body_len, long timeout_ms, long connect_timeout_ms,
                                 int fresh_connect, wdt_http_result *res);

/* Run jobs[0..njobs-1] with at most `concurrency` (1..WDT_HTTP_MAX_CONCURRENCY) in flight,
 * each job on the first free handle as soon as one is free; blocks until every job is done.
 * Every job gets a result; a job's timeouts count from its own start. Each `answer` is
 * initialised here (the caller frees them). 0, or -1 when no transfer could run at all
 * (out of memory, libcurl failure): every job's res then says why, with sent = 0. */
int  wdt_http_pool_run(wdt_http_pool *p, wdt_http_job *jobs, size_t njobs, size_t concurrency,
                       long timeout_ms, long connect_timeout_ms);

/* Transfers started one at a time and run together, each handed back as soon as it is
 * done (a window that slides, where wdt_http_pool_run is a batch that ends together).
 * While any is active, wdt_http_pool_post and _run fail their jobs (sent = 0).
 *   start: j (its url and body kept valid by the caller until j is handed back) on the
 *     lowest free handle -> the slot (0..WDT_HTTP_MAX_CONCURRENCY-1), or -1 with j->res
 *     saying why (nothing started). j->timeout_ms / connect_timeout_ms > 0 override the
 *     given ones.
 *   wait: runs the active transfers until at least one is done or wait_ms passed (0: only
 *     what can move now) -> how many were handed back: done[k] the job (res, answer,
 *     date filled as by _run), slot[k] its slot. done and slot hold
 *     WDT_HTTP_MAX_CONCURRENCY entries.
 *   abort: every active transfer removed, its job handed back failed with `why`. */
int    wdt_http_pool_start(wdt_http_pool *p, wdt_http_job *j, long timeout_ms, long connect_timeout_ms);
size_t wdt_http_pool_wait(wdt_http_pool *p, long wait_ms, wdt_http_job **done, size_t *slot);
size_t wdt_http_pool_abort(wdt_http_pool *p, const char *why, wdt_http_job **done, size_t *slot);

#endif
