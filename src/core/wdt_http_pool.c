/* wdt_http_pool.c: a client's transfers through one libcurl multi handle (contract in
 * wdt_http.h): the pool of easy handles (grown on demand, one connection each in the
 * shared cache), the socket/timer callbacks, the poll loop, and running N jobs with at
 * most `concurrency` in flight. Single POSTs go through here too, on reqs[0], so they
 * share the batch's connections. It schedules transfers and never looks inside one
 * (that is wdt_http.c). No Lua here.
 */
#define _POSIX_C_SOURCE 200809L

#include "wdt_http_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Wait for the watched sockets or libcurl's timer (at most cap_ms), then let libcurl run
 * the transfers that can move. */
static CURLMcode pool_step(wdt_http_pool *p, long cap_ms)
{
    int running = 0;
    long wait_ms = cap_ms;
    if (p->timer_ms >= 0) {
        double left = p->timer_at - mono_now();
        wait_ms = left <= 0 ? 0 : (long)(left * 1000.0) + 1;
        if (wait_ms > cap_ms)
            wait_ms = cap_ms;
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
    if (p->nactive > 0) {                     /* the handles belong to those transfers */
        for (size_t i = 0; i < njobs; i++)
            wdt_http_fail_result(&jobs[i].res, WDT_HTTP_NETWORK, 0,
                                 "the client has transfers in flight (a call_many or a flow)");
        return -1;
    }
    if (p->multi == NULL || pool_grow(p, conc) != 0) {
        for (size_t i = 0; i < njobs; i++)
            wdt_http_fail_result(&jobs[i].res, WDT_HTTP_NETWORK, 0,
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
                    wdt_http_fail_result(&j->res, WDT_HTTP_NETWORK, 0,
                                         curl_multi_strerror(mc));
                    continue;
                }
                busy[s] = 1;
                slot_job[s] = (size_t)(j - jobs);
                inflight++;
            }
        }
        if (inflight == 0)
            break;

        CURLMcode mc = pool_step(p, 1000);
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
            wdt_http_fail_result(&jobs[slot_job[s]].res, WDT_HTTP_NETWORK,
                                 p->reqs[s]->reached, fatal);
            wdt_buf_reset(&p->reqs[s]->body);
        }
        for (; next < njobs; next++)
            wdt_http_fail_result(&jobs[next].res, WDT_HTTP_NETWORK, 0, fatal);
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

/* ---- transfers started one at a time ------------------------------------------------------ */

int wdt_http_pool_start(wdt_http_pool *p, wdt_http_job *j, long timeout_ms, long connect_timeout_ms)
{
    size_t s = 0;
    memset(&j->res, 0, sizeof j->res);
    wdt_buf_init(&j->answer);
    j->date[0] = '\0';
    while (s < WDT_HTTP_MAX_CONCURRENCY && p->active[s] != NULL)
        s++;
    if (s == WDT_HTTP_MAX_CONCURRENCY) {
        wdt_http_fail_result(&j->res, WDT_HTTP_NETWORK, 0, "too many transfers in flight");
        return -1;
    }
    if (p->multi == NULL || pool_grow(p, s + 1) != 0) {
        wdt_http_fail_result(&j->res, WDT_HTTP_NETWORK, 0,
                             "cannot create the libcurl handles (out of memory?)");
        return -1;
    }
    wdt_http_req *r = p->reqs[s];
    if (wdt_http_prepare(r, j->url, j->body, j->body_len,
                         j->timeout_ms > 0 ? j->timeout_ms : timeout_ms,
                         j->connect_timeout_ms > 0 ? j->connect_timeout_ms : connect_timeout_ms,
                         &j->res) != 0)
        return -1;
    curl_easy_setopt(r->easy, CURLOPT_FRESH_CONNECT, j->fresh_connect ? 1L : 0L);
    CURLMcode mc = curl_multi_add_handle(p->multi, r->easy);
    if (mc != CURLM_OK) {
        wdt_http_fail_result(&j->res, WDT_HTTP_NETWORK, 0, curl_multi_strerror(mc));
        return -1;
    }
    p->active[s] = j;
    p->nactive++;
    return (int)s;
}

/* slot s handed back: its handle out of the multi handle, its job into done[k] */
static size_t hand_back(wdt_http_pool *p, size_t s, wdt_http_job **done, size_t *slot, size_t k)
{
    curl_multi_remove_handle(p->multi, p->reqs[s]->easy);
    done[k] = p->active[s];
    slot[k] = s;
    p->active[s] = NULL;
    p->nactive--;
    return k + 1;
}

size_t wdt_http_pool_abort(wdt_http_pool *p, const char *why, wdt_http_job **done, size_t *slot)
{
    size_t k = 0;
    for (size_t s = 0; s < WDT_HTTP_MAX_CONCURRENCY && p->nactive > 0; s++) {
        if (p->active[s] == NULL)
            continue;
        wdt_http_fail_result(&p->active[s]->res, WDT_HTTP_NETWORK, p->reqs[s]->reached, why);
        wdt_buf_reset(&p->reqs[s]->body);
        k = hand_back(p, s, done, slot, k);
    }
    return k;
}

size_t wdt_http_pool_wait(wdt_http_pool *p, long wait_ms, wdt_http_job **done, size_t *slot)
{
    size_t k = 0;
    double until = mono_now() + (double)wait_ms / 1000.0;
    while (p->nactive > 0 && k == 0) {
        double left_s = until - mono_now();
        long left = left_s <= 0 ? 0 : (long)(left_s * 1000.0) + 1;
        CURLMcode mc = pool_step(p, left);
        if (mc != CURLM_OK)                   /* the multi handle failed: fail them all */
            return wdt_http_pool_abort(p, curl_multi_strerror(mc), done, slot);
        int queued = 0;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(p->multi, &queued)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            CURLcode rc = msg->data.result;   /* read before the handle is removed */
            size_t s = 0;
            while (s < WDT_HTTP_MAX_CONCURRENCY && !(p->active[s] && p->reqs[s]->easy == e))
                s++;
            if (s == WDT_HTTP_MAX_CONCURRENCY) {
                curl_multi_remove_handle(p->multi, e);
                continue;                     /* not ours: cannot happen */
            }
            wdt_http_req *r = p->reqs[s];
            wdt_http_job *j = p->active[s];
            wdt_http_finish(r, rc, &j->res);
            if (j->res.kind == WDT_HTTP_OK) {
                memcpy(j->date, r->date, sizeof j->date);
                j->answer = r->body;          /* hand the buffer over, no copy */
                wdt_buf_init(&r->body);
            }
            k = hand_back(p, s, done, slot, k);
        }
        if (left == 0)
            break;
    }
    return k;
}
