/* The client userdata: credentials in C memory, prepare (encode, sign, URL) and the
 * libcurl transport (send, send_many).
 *
 *   core.client_new(sid, key, appsecret, opts) -> client
 *       opts: url, timeout, connect_timeout (seconds), max_body, ca_file, insecure, all
 *       checked and defaulted by wdt.options (the one place; wdt.client passes them on);
 *       here only what memory safety needs (types, no NUL in strings, numbers clamped
 *       before they become C integers).
 *   cl:prepare(method, args, pager, timestamp) -> url, body
 *   cl:send(url, body, opts)        -> answer | nil, failure
 *   cl:post(method, args, pager, timestamp, opts) -> answer | nil, failure: prepare and
 *       send in one, from the client's own buffers (no Lua string of the URL or body)
 *   cl:send_many(list, concurrency) -> results, results[i] an answer or a failure
 *       answer  = { status = <HTTP status>, body = <string>, date = <Date header or nil> }
 *       failure = { kind = "network" | "timeout" | "too_large" | "tls", message = ...,
 *                   sent = <false: the request never left> }
 *       opts and list items: timeout, connect_timeout (seconds; default the client's),
 *       fresh_connect (a new connection: libcurl silently sends a request once more when a
 *       reused connection dies before any answer byte, not for writes that must not be
 *       repeated; see doc/reliability.md). list items are {url, body, ...}.
 *   cl:start(url, body, opts) -> id | nil, failure; cl:wait(seconds) -> done; cl:abort():
 *       transfers started one at a time, each handed back as soon as it is done (below)
 *   cl:prepare_job(method, args, pager, timestamp) -> job: cl:prepare into C memory, for
 *       cl:start(job, opts) (a call's body is never a Lua string, as with cl:post)
 *   cl:redact(s) -> s with every occurrence of the client's secret, salt and key (those of
 *       at least 4 bytes: shorter ones would blank ordinary text) replaced by "***", for
 *       messages a server may have built from the request.
 *   cl:close(), __gc, __close: the secret and salt are wiped (OPENSSL_cleanse).
 *
 * The pool (one libcurl multi handle: one connection cache, so connections stay alive
 * between calls and batches) is created on the first send. Nothing raises while libcurl
 * runs: wdt_http returns codes and only then are Lua values pushed.
 *
 * Longer than the other files on purpose: send, post and send_many stay with the struct,
 * so the client's internals are not exported to another file.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wdt_compat.h"
#include "wdt_buf.h"
#include "wdt_json.h"
#include "wdt_http.h"
#include "wdt_request.h"
#include "wdt_core_client.h"

#define CLIENT_MT  "wdt.core.client"
#define JOBS_MT    "wdt.core.jobs"
#define JOB_MT     "wdt.core.job"
#define EPOCH_2012 1325347200LL
#define MAX_MS     2147483647.0          /* libcurl takes a long of milliseconds */
#define MAX_ITEMS  1000000
#define MAX_SPARE  4                     /* body buffers kept for a window of calls (a
                                            flow's default: 4 in flight) */

typedef struct wdt_client {
    int          closed;
    int          pool_ready;
    char        *sid, *key, *secret, *salt, *url, *ca_file;
    wdt_identity id;                 /* points into the strings above */
    int          insecure;
    size_t       max_body;
    long         timeout_ms;
    long         connect_timeout_ms;
    wdt_buf      body;               /* prepare: the JSON body */
    wdt_buf      query;              /* prepare: the URL */
    wdt_buf      spare[MAX_SPARE];   /* done jobs' body buffers, for the next jobs */
    size_t       nspare;
    wdt_signer   signer;             /* prepare: the MD5 context, reused */
    wdt_http_pool pool;              /* send, send_many */
} wdt_client;

/* One transfer's options, read from a Lua table (send's opts, a send_many item). */
typedef struct send_opts {
    long timeout_ms;
    long connect_timeout_ms;
    int  fresh_connect;
} send_opts;

/* ---- small helpers ---------------------------------------------------------------------- */

static char *dup_bytes(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static void free_secret(char **p, size_t n)
{
    wdt_request_wipe_free(*p, n);
    *p = NULL;
}

static void free_jobs(wdt_http_job **done, size_t n);

static void client_release(wdt_client *c)
{
    free_secret(&c->secret, c->id.secret_len);
    free_secret(&c->salt, c->id.salt_len);
    wdt_request_wipe_free((char *)c->id.url_prefix, c->id.url_prefix_len);   /* holds the salt */
    c->id.url_prefix = NULL;
    wdt_signer_free(&c->signer);
    free(c->key);
    c->key = NULL;
    free(c->url);
    c->url = NULL;
    free(c->ca_file);
    c->ca_file = NULL;
    wdt_buf_wipe(&c->body);
    wdt_buf_free(&c->body);
    wdt_buf_wipe(&c->query);            /* the URL held the salt */
    wdt_buf_free(&c->query);
    while (c->nspare > 0)
        wdt_buf_free(&c->spare[--c->nspare]);
    if (c->pool_ready) {
        wdt_http_job *done[WDT_HTTP_MAX_CONCURRENCY];
        size_t slot[WDT_HTTP_MAX_CONCURRENCY];
        free_jobs(done, wdt_http_pool_abort(&c->pool, "the client was closed", done, slot));
        wdt_http_pool_free(&c->pool);
    }
    c->pool_ready = 0;
    c->closed = 1;
    /* c->sid stays for __tostring; freed in __gc */
}

static wdt_client *check_client(lua_State *L)
{
    return (wdt_client *)luaL_checkudata(L, 1, CLIENT_MT);
}

static wdt_client *check_open_client(lua_State *L)
{
    wdt_client *c = check_client(L);
    if (c->closed)
        luaL_error(L, "client is closed");
    return c;
}

/* "bad argument #arg to 'f' (what: expected expected, got <type of the value at idx>)" */
static int type_error(lua_State *L, int arg, int idx, const char *what, const char *expected)
{
    return luaL_argerror(L, arg, lua_pushfstring(L, "%s: %s expected, got %s", what, expected,
                                                 luaL_typename(L, idx)));
}

/* A string without NUL bytes (numbers are not converted). */
static const char *check_str(lua_State *L, int arg, int idx, const char *name, size_t *len)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        type_error(L, arg, idx, name, "string");
    const char *s = lua_tolstring(L, idx, len);
    if (strlen(s) != *len)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: contains a NUL byte", name));
    return s;
}

static void check_table(lua_State *L, int arg, const char *name)
{
    if (lua_type(L, arg) != LUA_TTABLE)
        type_error(L, arg, arg, name, "table");
}

/* Seconds at field `name` of the table at t into milliseconds, clamped to 1..MAX_MS (the
 * range is wdt.client's to check); *ms stays when the field is nil. */
static void field_ms(lua_State *L, int t, int arg, const char *name, long *ms)
{
    if (compat_getfield(L, t, name) != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            type_error(L, arg, -1, name, "number (seconds)");
        double v = ceil((double)lua_tonumber(L, -1) * 1000.0);
        *ms = !(v >= 1.0) ? 1L : v > MAX_MS ? (long)MAX_MS : (long)v;
    }
    lua_pop(L, 1);
}

static void read_send_opts(lua_State *L, int t, int arg, send_opts *so)
{
    field_ms(L, t, arg, "timeout", &so->timeout_ms);
    field_ms(L, t, arg, "connect_timeout", &so->connect_timeout_ms);
    int ty = compat_getfield(L, t, "fresh_connect");
    if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
        type_error(L, arg, -1, "fresh_connect", "boolean");
    so->fresh_connect = lua_toboolean(L, -1);
    lua_pop(L, 1);
}

/* ---- core.client_new -------------------------------------------------------------------- */

static int l_client_new(lua_State *L)
{
    size_t sid_len, key_len, app_len, url_len, ca_len = 0;
    const char *sid = check_str(L, 1, 1, "sid", &sid_len);
    const char *key = check_str(L, 2, 2, "key", &key_len);
    const char *app = check_str(L, 3, 3, "appsecret", &app_len);
    const char *ca_file = NULL;
    lua_Integer max_body = 0;
    long timeout_ms = 0, connect_timeout_ms = 0;

    /* never quote the appsecret in a message */
    const char *colon = memchr(app, ':', app_len);
    if (colon == NULL)
        luaL_argerror(L, 3, "secret: the appsecret has the form 'secret:salt' (no ':' found)");
    check_table(L, 4, "opts");
    lua_settop(L, 4);
    if (compat_getfield(L, 4, "url") != LUA_TSTRING)   /* stays on the stack: anchored */
        type_error(L, 4, 5, "opts.url", "string");
    const char *url = check_str(L, 4, 5, "opts.url", &url_len);
    if (compat_getfield(L, 4, "ca_file") != LUA_TNIL)
        ca_file = check_str(L, 4, 6, "opts.ca_file", &ca_len);
    field_ms(L, 4, 4, "timeout", &timeout_ms);
    field_ms(L, 4, 4, "connect_timeout", &connect_timeout_ms);
    compat_getfield(L, 4, "max_body");
    if (!compat_tointeger_strict(L, -1, &max_body))
        type_error(L, 4, -1, "opts.max_body", "integer");
    lua_pop(L, 1);
    if (compat_getfield(L, 4, "insecure") != LUA_TBOOLEAN)
        type_error(L, 4, -1, "opts.insecure", "boolean");
    int insecure = lua_toboolean(L, -1);
    lua_pop(L, 1);

    wdt_client *c = (wdt_client *)compat_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    c->closed = 1;                       /* until everything is in place */
    wdt_buf_init(&c->body);
    wdt_buf_init(&c->query);
    compat_setmetatable(L, CLIENT_MT);   /* from here __gc frees whatever was copied */

    size_t secret_len = (size_t)(colon - app);
    c->sid = dup_bytes(sid, sid_len);
    c->key = dup_bytes(key, key_len);
    c->secret = dup_bytes(app, secret_len);
    c->salt = dup_bytes(colon + 1, app_len - secret_len - 1);
    c->url = dup_bytes(url, url_len);
    c->ca_file = ca_file ? dup_bytes(ca_file, ca_len) : NULL;
    if (!c->sid || !c->key || !c->secret || !c->salt || !c->url || (ca_file && !c->ca_file)) {
        client_release(c);
        return luaL_error(L, "out of memory");
    }
    c->id = (wdt_identity){ c->sid, sid_len, c->key, key_len, c->secret, secret_len,
                            c->salt, app_len - secret_len - 1, NULL, 0 };
    c->insecure = insecure;
    c->max_body = max_body < 1 ? 1 : (size_t)max_body;
    c->timeout_ms = timeout_ms;
    c->connect_timeout_ms = connect_timeout_ms;
    c->id.url_prefix = wdt_request_url_prefix(url, url_len, &c->id, &c->id.url_prefix_len);
    if (c->id.url_prefix == NULL) {
        client_release(c);
        return luaL_error(L, "out of memory");
    }
    c->closed = 0;
    return 1;
}

/* ---- life cycle ------------------------------------------------------------------------- */

static int l_client_close(lua_State *L)
{
    wdt_client *c = check_client(L);
    if (!c->closed)
        client_release(c);
    return 0;
}

static int l_client_gc(lua_State *L)
{
    wdt_client *c = check_client(L);
    client_release(c);
    free(c->sid);
    c->sid = NULL;
    return 0;
}

static int l_client_tostring(lua_State *L)
{
    wdt_client *c = check_client(L);
    if (c->sid == NULL)
        lua_pushliteral(L, "wdt.core.client<closed>");
    else if (c->closed)
        lua_pushfstring(L, "wdt.core.client<sid=%s, closed>", c->sid);
    else
        lua_pushfstring(L, "wdt.core.client<sid=%s>", c->sid);
    return 1;
}

/* ---- cl:prepare ------------------------------------------------------------------------- */

static void read_pager(lua_State *L, int arg, wdt_request_page *pg)
{
    lua_Integer v = 0;
    check_table(L, arg, "pager");
    pg->paged = 1;
    compat_getfield(L, arg, "page_size");
    if (!compat_tointeger_strict(L, -1, &v) || v < 1)
        luaL_argerror(L, arg, "pager.page_size: a positive integer expected");
    pg->page_size = (long long)v;
    lua_pop(L, 1);
    v = 0;
    if (compat_getfield(L, arg, "page_no") != LUA_TNIL
        && (!compat_tointeger_strict(L, -1, &v) || v < 0))
        luaL_argerror(L, arg, "pager.page_no: a non-negative integer expected");
    pg->page_no = (long long)v;
    lua_pop(L, 1);
    int ty = compat_getfield(L, arg, "calc_total");
    if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
        luaL_argerror(L, arg, "pager.calc_total: a boolean expected");
    pg->calc_total = lua_toboolean(L, -1);
    lua_pop(L, 1);
}

/* the body: a JSON array of args[1..n], nil encoded as null. 0, or -1 out of memory;
 * raises with the codec's message (it names where: "args[1][2].x: ...") */
static int encode_args(lua_State *L, int args, lua_Integer n, wdt_buf *body)
{
    char err[256];
    int oom = wdt_buf_putc(body, '[');
    for (lua_Integer i = 1; i <= n && !oom; i++) {
        char root[48] = "args[";
        if (i > 1)
            oom |= wdt_buf_putc(body, ',');
        lua_rawgeti(L, args, (int)i);
        if (lua_isnil(L, -1)) {
            oom |= wdt_buf_puts(body, "null");
        } else {
            size_t rl = 5 + wdt_fmt_int(root + 5, (long long)i);
            root[rl] = ']';
            root[rl + 1] = '\0';
            if (wdt_json_encode(L, -1, root, body, err, sizeof err) != 0) {
                wdt_buf_reset(body);
                lua_pushstring(L, err);
                return lua_error(L);
            }
        }
        lua_pop(L, 1);
    }
    oom |= wdt_buf_putc(body, ']');
    return oom ? -1 : 0;
}

/* The request of cl:prepare / cl:post (args from 2: method, args, pager, timestamp) into
 * the client's buffers: c->query the URL, c->body the body. Raises on bad arguments. */
static void prepare_request(lua_State *L, wdt_client *c)
{
    size_t method_len;
    const char *method = check_str(L, 2, 2, "method", &method_len);
    lua_Integer n = 0, ts = 0;
    wdt_request_page pg = { 0, 0, 0, 0 };

    check_table(L, 3, "args");
    if (compat_getfield(L, 3, "n") == LUA_TNIL)
        n = (lua_Integer)compat_rawlen(L, 3);
    else if (!compat_tointeger_strict(L, -1, &n) || n < 0 || n > 1000000)
        luaL_argerror(L, 3, "args.n: a non-negative integer expected");
    lua_pop(L, 1);
    if (!lua_isnoneornil(L, 4))
        read_pager(L, 4, &pg);
    if (lua_isnoneornil(L, 5)) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        ts = (lua_Integer)((long long)now.tv_sec - EPOCH_2012);
    } else if (!compat_tointeger_strict(L, 5, &ts)) {
        luaL_argerror(L, 5, lua_pushfstring(L, "timestamp: an integer expected, got %s",
                                            lua_type(L, 5) == LUA_TNUMBER ? "a fraction"
                                                                          : luaL_typename(L, 5)));
    }

    wdt_buf *body = &c->body, *q = &c->query;
    wdt_buf_reset(body);
    int rc = encode_args(L, 3, n, body);
    if (rc == 0)
        rc = wdt_request_url(q, &c->signer, &c->id, method, method_len, body->data, body->len,
                             &pg, (long long)ts);
    if (rc != 0) {
        wdt_buf_reset(body);
        luaL_error(L, rc == -2 ? "MD5 is not available from OpenSSL" : "out of memory");
    }
}

/* cl:prepare(method, args, pager, timestamp) -> url, body */
static int l_client_prepare(lua_State *L)
{
    wdt_client *c = check_open_client(L);
    prepare_request(L, c);
    lua_pushlstring(L, c->query.data, c->query.len);
    lua_pushlstring(L, c->body.data, c->body.len);
    wdt_buf_wipe_used(&c->query);
    wdt_buf_reset(&c->body);
    return 2;
}

/* ---- cl:send, cl:send_many -------------------------------------------------------------- */

static const char *kind_name(wdt_http_kind k)
{
    switch (k) {
    case WDT_HTTP_TIMEOUT:   return "timeout";
    case WDT_HTTP_TOO_LARGE: return "too_large";
    case WDT_HTTP_TLS:       return "tls";
    default:                 return "network";
    }
}

/* The client's pool, created on first use; NULL when it cannot be (out of memory). */
static wdt_http_pool *client_pool(wdt_client *c)
{
    if (!c->pool_ready) {
        wdt_http_opts ho = { c->max_body, c->ca_file, c->insecure };
        if (wdt_http_pool_init(&c->pool, &ho) != 0) {
            wdt_http_pool_free(&c->pool);
            return NULL;
        }
        c->pool_ready = 1;
    }
    return &c->pool;
}

/* {status =, body =, date =} */
static void push_answer(lua_State *L, long status, const wdt_buf *body, const char *date)
{
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, body->data ? body->data : "", body->len);
    lua_setfield(L, -2, "body");
    if (date[0]) {
        lua_pushstring(L, date);
        lua_setfield(L, -2, "date");
    }
}

/* {kind =, message =, sent =} */
static void push_failure(lua_State *L, const wdt_http_result *res)
{
    lua_createtable(L, 0, 3);
    lua_pushstring(L, kind_name(res->kind));
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, res->message);
    lua_setfield(L, -2, "message");
    lua_pushboolean(L, res->sent);
    lua_setfield(L, -2, "sent");
}

static void no_pool(wdt_http_result *res)
{
    res->kind = WDT_HTTP_NETWORK;
    res->sent = 0;
    strcpy(res->message, "cannot create the libcurl handles (out of memory?)");
}

/* One transfer through the client's pool -> answer (1 result) | nil, failure (2). With
 * `own_buffers` the URL and body are the client's (cl:post): wiped and emptied after. */
static int post_once(lua_State *L, wdt_client *c, const char *url, const char *body, size_t body_len,
                     const send_opts *so, int own_buffers)
{
    wdt_http_result res;
    int answered = 0;
    wdt_http_pool *pool = client_pool(c);
    if (pool == NULL)
        no_pool(&res);
    else
        answered = wdt_http_pool_post(pool, url, body, body_len, so->timeout_ms,
                                      so->connect_timeout_ms, so->fresh_connect, &res) == WDT_HTTP_OK;
    if (own_buffers) {
        wdt_buf_wipe_used(&c->query);
        wdt_buf_reset(&c->body);
    }
    if (answered) {
        wdt_http_req *r = pool->reqs[0];
        push_answer(L, res.status, &r->body, r->date);
        wdt_http_release_body(r);
        return 1;
    }
    lua_pushnil(L);
    push_failure(L, &res);
    return 2;
}

/* cl:send(url, body, opts) -> answer | nil, failure */
static int l_client_send(lua_State *L)
{
    wdt_client *c = check_open_client(L);
    size_t url_len, body_len;
    const char *url = check_str(L, 2, 2, "url", &url_len);
    const char *body = check_str(L, 3, 3, "body", &body_len);   /* NUL-free: JSON */
    send_opts so = { c->timeout_ms, c->connect_timeout_ms, 0 };

    if (!lua_isnoneornil(L, 4)) {
        check_table(L, 4, "opts");
        read_send_opts(L, 4, 4, &so);
    }
    /* url and body are Lua strings anchored in this frame for the whole transfer */
    return post_once(L, c, url, body, body_len, &so, 0);
}

/* cl:post(method, args, pager, timestamp, opts) -> answer | nil, failure: cl:prepare and
 * cl:send in one, sent from the client's own buffers. A call's body is made once, not
 * copied into a Lua string (a push's call carries ~100 KB). */
static int l_client_post(lua_State *L)
{
    wdt_client *c = check_open_client(L);
    send_opts so = { c->timeout_ms, c->connect_timeout_ms, 0 };

    if (!lua_isnoneornil(L, 6)) {
        check_table(L, 6, "opts");
        read_send_opts(L, 6, 6, &so);
    }
    prepare_request(L, c);
    c->query.data[c->query.len] = '\0';                 /* room for it is always kept */
    return post_once(L, c, c->query.data, c->body.data, c->body.len, &so, 1);
}

typedef struct jobs_box {
    size_t       n;
    wdt_http_job jobs[1];
} jobs_box;

static int jobs_gc(lua_State *L)
{
    jobs_box *b = (jobs_box *)luaL_checkudata(L, 1, JOBS_MT);
    for (size_t i = 0; i < b->n; i++)
        wdt_buf_free(&b->jobs[i].answer);
    b->n = 0;
    return 0;
}

/* The jobs of a batch, in a box that __gc frees even when an error unwinds the stack. */
static jobs_box *push_jobs_box(lua_State *L, size_t n)
{
    size_t size = sizeof(jobs_box) + (n ? n - 1 : 0) * sizeof(wdt_http_job);
    jobs_box *b = (jobs_box *)compat_newuserdata(L, size);
    memset(b, 0, size);                 /* zeroed answers: __gc-safe before the run */
    b->n = n;
    compat_setmetatable(L, JOBS_MT);
    return b;
}

/* list[i] = {url, body, timeout =, connect_timeout =, fresh_connect =} into j; the
 * strings stay anchored by `list` (argument 2) during the run */
static void read_job(lua_State *L, size_t i, wdt_http_job *j)
{
    send_opts so = { 0, 0, 0 };            /* 0 ms: the run's (the client's) timeouts */
    size_t url_len;
    lua_rawgeti(L, 2, (int)i);
    int item = lua_gettop(L);
    if (lua_type(L, item) != LUA_TTABLE)
        luaL_argerror(L, 2, lua_pushfstring(L, "list[%d]: {url, body} expected, got %s",
                                            (int)i, luaL_typename(L, item)));
    lua_rawgeti(L, item, 1);
    lua_rawgeti(L, item, 2);
    j->url = check_str(L, 2, item + 1, "url", &url_len);
    j->body = check_str(L, 2, item + 2, "body", &j->body_len);
    lua_pop(L, 2);
    read_send_opts(L, item, 2, &so);
    j->timeout_ms = so.timeout_ms;
    j->connect_timeout_ms = so.connect_timeout_ms;
    j->fresh_connect = so.fresh_connect;
    lua_pop(L, 1);
}

/* cl:send_many(list, concurrency) -> results */
static int l_client_send_many(lua_State *L)
{
    wdt_client *c = check_open_client(L);
    lua_Integer conc = 0;
    check_table(L, 2, "list");
    if (!compat_tointeger_strict(L, 3, &conc) || conc < 1 || conc > WDT_HTTP_MAX_CONCURRENCY)
        luaL_argerror(L, 3, lua_pushfstring(L, "concurrency: an integer from 1 to %d expected",
                                            WDT_HTTP_MAX_CONCURRENCY));
    size_t n = compat_rawlen(L, 2);
    if (n > MAX_ITEMS)
        luaL_argerror(L, 2, "list: more than 1000000 items");
    lua_settop(L, 3);
    jobs_box *box = push_jobs_box(L, n);
    for (size_t i = 0; i < n; i++)
        read_job(L, i + 1, &box->jobs[i]);

    wdt_http_pool *pool = client_pool(c);
    if (pool == NULL) {
        for (size_t i = 0; i < n; i++)
            no_pool(&box->jobs[i].res);
    } else {
        wdt_http_pool_run(pool, box->jobs, n, (size_t)conc, c->timeout_ms, c->connect_timeout_ms);
    }

    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        wdt_http_job *j = &box->jobs[i];
        if (j->res.kind == WDT_HTTP_OK)
            push_answer(L, j->res.status, &j->answer, j->date);
        else
            push_failure(L, &j->res);
        wdt_buf_free(&j->answer);       /* as we go: the peak is one copy of each answer */
        lua_rawseti(L, -2, (int)(i + 1));
    }
    return 1;
}

/* ---- cl:start, cl:wait, cl:abort: transfers started one at a time ----------------------
 *
 *   cl:start(url, body, opts) -> id | nil, failure    (opts as send's)
 *   cl:start(job, opts): the same for a job of cl:prepare_job (used up by it)
 *   cl:wait(seconds) -> list of the transfers done, each an answer or a failure with `id`;
 *       empty when none finished within `seconds` (0: only what can move now)
 *   cl:abort() -> the same list for every transfer still active, failed
 * A job owns its URL and body (freed when it is handed back), so no Lua string need
 * outlive the call to start. A body's buffer goes back to the client when its job is
 * done (c->spare, up to MAX_SPARE), so a window of calls writes its bodies into the same
 * memory: no allocation, zeroing or copy of ~100 KB per push call. */

typedef struct owned_job {
    wdt_http_job job;                 /* first: a job's address is its owned_job's */
    wdt_buf      body;                /* the body; job.body points into it */
    char        *url;                 /* job.url: wiped when freed (it holds the salt) */
    size_t       url_len;
} owned_job;

/* a job with a copy of the URL and an empty body buffer, or NULL (out of memory) */
static owned_job *alloc_job(const char *url, size_t url_len)
{
    owned_job *o = malloc(sizeof *o);
    if (o == NULL)
        return NULL;
    memset(o, 0, sizeof *o);
    o->url = dup_bytes(url, url_len);
    if (o->url == NULL) {
        free(o);
        return NULL;
    }
    o->url_len = url_len;
    o->job.url = o->url;
    return o;
}

/* The job freed; its body's buffer kept among the client's spares while there is room (c
 * may be NULL: the buffer is freed). */
static void free_job(wdt_client *c, wdt_http_job *j)
{
    owned_job *o = (owned_job *)j;
    wdt_buf_free(&j->answer);
    wdt_request_wipe_free(o->url, o->url_len);
    if (c != NULL && !c->closed && c->nspare < MAX_SPARE) {
        wdt_buf_reset(&o->body);
        c->spare[c->nspare++] = o->body;
    } else {
        wdt_buf_free(&o->body);
    }
    free(o);
}

static wdt_http_job *new_job(const char *url, size_t url_len, const char *body, size_t body_len)
{
    owned_job *o = alloc_job(url, url_len);
    if (o == NULL)
        return NULL;
    if (wdt_buf_append(&o->body, body, body_len) != 0) {
        free_job(NULL, &o->job);
        return NULL;
    }
    o->job.body = o->body.data;
    o->job.body_len = body_len;
    return &o->job;
}

/* the jobs handed back, as a list of answers and failures with their ids; the jobs freed */
static int push_done(lua_State *L, wdt_client *c, wdt_http_job **done, const size_t *slot, size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t k = 0; k < n; k++) {
        wdt_http_job *j = done[k];
        if (j->res.kind == WDT_HTTP_OK)
            push_answer(L, j->res.status, &j->answer, j->date);
        else
            push_failure(L, &j->res);
        lua_pushinteger(L, (lua_Integer)slot[k] + 1);
        lua_setfield(L, -2, "id");
        lua_rawseti(L, -2, (int)(k + 1));
        free_job(c, j);
        done[k] = NULL;
    }
    return 1;
}

static void free_jobs(wdt_http_job **done, size_t n)
{
    for (size_t k = 0; k < n; k++)
        free_job(NULL, done[k]);
}

/* A job of cl:prepare_job: a userdata holding it until cl:start takes it (NULL after). */
static wdt_http_job **check_job(lua_State *L, int idx)
{
    return (wdt_http_job **)luaL_checkudata(L, idx, JOB_MT);
}

static int job_gc(lua_State *L)
{
    wdt_http_job **box = check_job(L, 1);
    if (*box != NULL)
        free_job(NULL, *box);
    *box = NULL;
    return 0;
}

/* cl:prepare_job(method, args, pager, timestamp) -> job: the request prepared as by
 * cl:prepare, its body's buffer taken over by the job (the client's next body goes into
 * a spare one, when there is one) and the URL copied; nothing becomes a Lua string */
static int l_client_prepare_job(lua_State *L)
{
    wdt_client *c = check_open_client(L);
    lua_settop(L, 5);
    wdt_http_job **box = (wdt_http_job **)compat_newuserdata(L, sizeof *box);   /* at 6 */
    *box = NULL;
    compat_setmetatable(L, JOB_MT);
    prepare_request(L, c);
    owned_job *o = alloc_job(c->query.data, c->query.len);
    wdt_buf_wipe_used(&c->query);
    if (o == NULL) {
        wdt_buf_reset(&c->body);
        return luaL_error(L, "out of memory");
    }
    o->body = c->body;
    if (c->nspare > 0)
        c->body = c->spare[--c->nspare];
    else
        wdt_buf_init(&c->body);
    o->job.body = o->body.data;
    o->job.body_len = o->body.len;
    *box = &o->job;
    return 1;
}

static int l_client_start(lua_State *L)
{
    wdt_client *c = check_open_client(L);
    wdt_http_job **box = NULL;
    size_t url_len = 0, body_len = 0;
    const char *url = NULL, *body = NULL;
    int opts_at = 3;
    if (lua_type(L, 2) == LUA_TUSERDATA) {
        box = check_job(L, 2);
        if (*box == NULL)
            luaL_argerror(L, 2, "job: started already");
    } else {
        url = check_str(L, 2, 2, "url", &url_len);
        body = check_str(L, 3, 3, "body", &body_len);
        opts_at = 4;
    }
    send_opts so = { 0, 0, 0 };            /* 0 ms: the client's timeouts */
    if (!lua_isnoneornil(L, opts_at)) {
        check_table(L, opts_at, "opts");
        read_send_opts(L, opts_at, opts_at, &so);
    }
    wdt_http_result res;
    wdt_http_pool *pool = client_pool(c);
    wdt_http_job *j = NULL;
    if (pool != NULL && box != NULL) {      /* nothing raises from here on */
        j = *box;
        *box = NULL;
    } else if (pool != NULL) {
        j = new_job(url, url_len, body, body_len);
    }
    if (j == NULL) {
        no_pool(&res);
        lua_pushnil(L);
        push_failure(L, &res);
        return 2;
    }
    j->timeout_ms = so.timeout_ms;
    j->connect_timeout_ms = so.connect_timeout_ms;
    j->fresh_connect = so.fresh_connect;
    int slot = wdt_http_pool_start(pool, j, c->timeout_ms, c->connect_timeout_ms);
    if (slot < 0) {
        res = j->res;
        free_job(c, j);
        lua_pushnil(L);
        push_failure(L, &res);
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)slot + 1);
    return 1;
}

static int l_client_wait(lua_State *L)
{
    wdt_client *c = check_open_client(L);
    double seconds = luaL_optnumber(L, 2, 1.0);
    long ms = !(seconds > 0) ? 0L : seconds * 1000.0 > MAX_MS ? (long)MAX_MS : (long)(seconds * 1000.0);
    wdt_http_job *done[WDT_HTTP_MAX_CONCURRENCY];
    size_t slot[WDT_HTTP_MAX_CONCURRENCY];
    size_t n = c->pool_ready ? wdt_http_pool_wait(&c->pool, ms, done, slot) : 0;
    if (!lua_checkstack(L, 4)) {
        free_jobs(done, n);
        return luaL_error(L, "out of memory");
    }
    return push_done(L, c, done, slot, n);
}

static int l_client_abort(lua_State *L)
{
    wdt_client *c = check_client(L);
    wdt_http_job *done[WDT_HTTP_MAX_CONCURRENCY];
    size_t slot[WDT_HTTP_MAX_CONCURRENCY];
    size_t n = c->pool_ready ? wdt_http_pool_abort(&c->pool, "aborted", done, slot) : 0;
    return push_done(L, c, done, slot, n);
}

/* ---- cl:redact ------------------------------------------------------------------------- */

static size_t match_at(const char *s, size_t n, size_t i, const char *w, size_t wn)
{
    return wn >= 4 && i + wn <= n && memcmp(s + i, w, wn) == 0 ? wn : 0;
}

static int l_client_redact(lua_State *L)
{
    wdt_client *c = check_client(L);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    luaL_Buffer b;
    if (c->closed) {                    /* the secrets are gone: nothing left to match */
        lua_settop(L, 2);
        return 1;
    }
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n;) {
        size_t m = match_at(s, n, i, c->secret, c->id.secret_len);
        if (!m)
            m = match_at(s, n, i, c->salt, c->id.salt_len);
        if (!m)
            m = match_at(s, n, i, c->key, c->id.key_len);
        if (m) {
            luaL_addstring(&b, "***");
            i += m;
        } else {
            luaL_addchar(&b, s[i]);
            i++;
        }
    }
    luaL_pushresult(&b);
    return 1;
}

/* ---- registration ----------------------------------------------------------------------- */

static const luaL_Reg client_methods[] = {
    { "prepare",   l_client_prepare },
    { "send",      l_client_send },
    { "post",      l_client_post },
    { "send_many", l_client_send_many },
    { "prepare_job", l_client_prepare_job },
    { "start",     l_client_start },
    { "wait",      l_client_wait },
    { "abort",     l_client_abort },
    { "redact",    l_client_redact },
    { "close",     l_client_close },
    { NULL, NULL }
};

static const luaL_Reg client_meta[] = {
    { "__gc",       l_client_gc },
    { "__tostring", l_client_tostring },
#if LUA_VERSION_NUM >= 504
    { "__close",    l_client_close },
#endif
    { NULL, NULL }
};

static const luaL_Reg jobs_meta[] = {
    { "__gc", jobs_gc },
    { NULL, NULL }
};

static const luaL_Reg job_meta[] = {
    { "__gc", job_gc },
    { NULL, NULL }
};

void wdt_core_open_client(lua_State *L)
{
    compat_register_mt(L, CLIENT_MT, client_meta, client_methods);
    compat_register_mt(L, JOBS_MT, jobs_meta, NULL);
    compat_register_mt(L, JOB_MT, job_meta, NULL);
    lua_pushcfunction(L, l_client_new);
    lua_setfield(L, -2, "client_new");
}
