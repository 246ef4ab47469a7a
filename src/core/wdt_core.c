/* luaopen_wdt_core: the client userdata and the bindings of the C core.
 *
 * The client userdata holds the sid, key, secret, salt and base URL in C memory (the
 * secret and salt are wiped with OPENSSL_cleanse on close/__gc), two scratch buffers for
 * prepare() and, created on the first send() or send_many(), a pool: one libcurl multi
 * handle (one connection cache, so connections stay alive between calls and batches) and
 * its easy handles (send() uses the first; send_many(), in wdt_batch.c, up to its
 * concurrency). Nothing here raises while libcurl runs: wdt_http returns codes and only
 * then are Lua values pushed.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "wdt_compat.h"
#include "wdt_buf.h"
#include "wdt_json.h"
#include "wdt_sign.h"
#include "wdt_http.h"
#include "wdt_batch.h"
#include "wdt_core_fs.h"

#define CLIENT_MT   "wdt.core.client"
#define BUFBOX_MT   "wdt.core.buf"
/* WDT_VERSION: project(... VERSION) in CMakeLists.txt, the one source of the version. */
#ifndef WDT_VERSION
#  error "WDT_VERSION is defined by the build (CMakeLists.txt's project version)"
#endif
#define DEFAULT_URL "http://wdt.wangdian.cn/openapi"
#define DEFAULT_TIMEOUT_MS          30000L
#define DEFAULT_CONNECT_TIMEOUT_MS  10000L
#define EPOCH_2012 1325347200LL

typedef struct wdt_client {
    int     closed;
    int     pool_ready;
    char   *sid;     size_t sid_len;
    char   *key;     size_t key_len;
    char   *secret;  size_t secret_len;
    char   *salt;    size_t salt_len;
    char   *url;     size_t url_len;
    char   *ca_file;
    int     insecure;
    size_t  max_body;
    long    timeout_ms;
    long    connect_timeout_ms;
    char   *url_prefix; size_t url_prefix_len;   /* base?sid=..&key=..&salt=..&method= */
    wdt_buf body;                    /* prepare: the JSON body */
    wdt_buf query;                   /* prepare: the URL */
    wdt_signer signer;               /* prepare: the MD5 context, reused */
    wdt_http_pool pool;              /* send, send_many: the kept-alive handles and their
                                        connection cache (one multi handle) */
} wdt_client;

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

static void free_secret(char **p, size_t *n)
{
    if (*p) {
        OPENSSL_cleanse(*p, *n + 1);
        free(*p);
    }
    *p = NULL;
    *n = 0;
}

static void client_release(wdt_client *c)
{
    free_secret(&c->secret, &c->secret_len);
    free_secret(&c->salt, &c->salt_len);
    free_secret(&c->url_prefix, &c->url_prefix_len);   /* holds the salt */
    wdt_signer_free(&c->signer);
    free(c->key);
    c->key = NULL;
    c->key_len = 0;
    free(c->url);
    c->url = NULL;
    free(c->ca_file);
    c->ca_file = NULL;
    wdt_buf_wipe(&c->body);
    wdt_buf_free(&c->body);
    wdt_buf_wipe(&c->query);            /* the URL held the salt */
    wdt_buf_free(&c->query);
    if (c->pool_ready)
        wdt_http_pool_free(&c->pool);
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

/* Raise "bad argument #arg to 'f' (what: expected expected, got <type of the value at idx>)". */
static int type_error_at(lua_State *L, int arg, int idx, const char *what, const char *expected)
{
    const char *got = luaL_typename(L, idx);
    return luaL_argerror(L, arg, lua_pushfstring(L, "%s: %s expected, got %s", what, expected, got));
}

/* the value on top of the stack is the offending one */
#define type_error(L, arg, what, expected) type_error_at(L, arg, lua_gettop(L), what, expected)

/* A string argument, strictly (numbers are not converted). */
static const char *check_str(lua_State *L, int arg, const char *name, size_t *len)
{
    if (lua_type(L, arg) != LUA_TSTRING)
        type_error_at(L, arg, arg, name, "string");
    return lua_tolstring(L, arg, len);
}

static void check_table(lua_State *L, int arg, const char *name)
{
    if (lua_type(L, arg) != LUA_TTABLE)
        type_error_at(L, arg, arg, name, "table");
}

/* Seconds (a positive number) at field `name` of the table at `t` into milliseconds;
 * leaves *ms alone when the field is nil. */
static void opt_seconds(lua_State *L, int t, int arg, const char *name, long *ms)
{
    int ty = compat_getfield(L, t, name);
    if (ty != LUA_TNIL) {
        double s;
        if (ty != LUA_TNUMBER) {
            int v = lua_gettop(L);
            type_error_at(L, arg, v, lua_pushfstring(L, "opts.%s", name), "number (seconds)");
        }
        s = (double)lua_tonumber(L, -1);
        if (!(s > 0) || s > 86400.0 * 24)        /* fits a 32-bit long in ms */
            luaL_argerror(L, arg, lua_pushfstring(L, "opts.%s: a positive number of seconds (at most 24 days) expected", name));
        *ms = (long)ceil(s * 1000.0);
        if (*ms < 1)
            *ms = 1;
    }
    lua_pop(L, 1);
}

/* RFC 3986 unreserved characters: A-Z a-z 0-9 - . _ ~ */
static const unsigned char unreserved[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

static int pct_encode(wdt_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (wdt_buf_reserve(b, n * 3) != 0)
        return -1;
    char *o = b->data + b->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (unreserved[ch]) {
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

/* sep: '?', '&' or 0 (none) before "k=v" */
static int put_param(wdt_buf *b, char sep, const char *k, const char *v, size_t vlen)
{
    if ((sep && wdt_buf_putc(b, sep) != 0) || wdt_buf_puts(b, k) != 0
        || wdt_buf_putc(b, '=') != 0)
        return -1;
    return pct_encode(b, v, vlen);
}

/* Decimal digits of v into out (at least 22 bytes) and a NUL; returns the length. */
static size_t fmt_int(char *out, lua_Integer v)
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

/* Overwrite what a buffer holds (the URL holds the salt), then empty it. */
static void wipe_used(wdt_buf *b)
{
    if (b->data)
        OPENSSL_cleanse(b->data, b->len + 1);
    b->len = 0;
}

/* The part of every URL that does not change: base?sid=..&key=..&salt=..&method=
 * (the query in the order prepare() always used). Sized up front, so no realloc leaves a
 * copy of the salt behind. NULL when out of memory. */
static char *make_url_prefix(const wdt_client *c, size_t *len)
{
    wdt_buf b;
    int oom = 0;
    char sep = '?';
    wdt_buf_init(&b);
    if (wdt_buf_reserve(&b, c->url_len + 3 * (c->sid_len + c->key_len + c->salt_len) + 32) != 0)
        return NULL;
    if (memchr(c->url, '?', c->url_len) != NULL) {   /* the base URL has a query already */
        char last = c->url[c->url_len - 1];
        sep = (last == '?' || last == '&') ? 0 : '&';
    }
    oom |= wdt_buf_append(&b, c->url, c->url_len);
    oom |= put_param(&b, sep, "sid", c->sid, c->sid_len);
    oom |= put_param(&b, '&', "key", c->key, c->key_len);
    oom |= put_param(&b, '&', "salt", c->salt, c->salt_len);
    oom |= wdt_buf_puts(&b, "&method=");
    if (oom) {
        wipe_used(&b);
        wdt_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

/* A box for a temporary buffer: freed by __gc even when an error unwinds the stack. */
static int bufbox_gc(lua_State *L)
{
    wdt_buf *b = (wdt_buf *)luaL_checkudata(L, 1, BUFBOX_MT);
    wdt_buf_free(b);
    return 0;
}

static wdt_buf *push_bufbox(lua_State *L)
{
    wdt_buf *b = (wdt_buf *)compat_newuserdata(L, sizeof *b);
    wdt_buf_init(b);
    compat_setmetatable(L, BUFBOX_MT);
    return b;
}

/* ---- core.client_new -------------------------------------------------------------------- */

static int l_client_new(lua_State *L)
{
    size_t sid_len, key_len, app_len;
    const char *sid = check_str(L, 1, "sid", &sid_len);
    const char *key = check_str(L, 2, "key", &key_len);
    const char *app = check_str(L, 3, "appsecret", &app_len);
    const char *colon;
    const char *url = DEFAULT_URL;
    size_t url_len = strlen(DEFAULT_URL);
    const char *ca_file = NULL;
    int insecure = 0;
    lua_Integer max_body = (lua_Integer)WDT_HTTP_MAX_BODY_DEFAULT;
    long timeout_ms = DEFAULT_TIMEOUT_MS, connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;

    if (sid_len == 0)
        luaL_argerror(L, 1, "sid: a non-empty string expected");
    if (key_len == 0)
        luaL_argerror(L, 2, "key: a non-empty string expected");
    /* never quote the appsecret in a message */
    colon = memchr(app, ':', app_len);
    if (colon == NULL)
        luaL_argerror(L, 3, "secret: the appsecret has the form 'secret:salt' (no ':' found)");
    if (colon == app)
        luaL_argerror(L, 3, "secret: the secret part of the appsecret (before the first ':') is empty");

    if (!lua_isnoneornil(L, 4)) {
        check_table(L, 4, "opts");
        int ty = compat_getfield(L, 4, "url");
        if (ty != LUA_TNIL) {
            if (ty != LUA_TSTRING)
                type_error(L, 4, "opts.url", "string");
            url = lua_tolstring(L, -1, &url_len);
            if (!((url_len > 7 && strncmp(url, "http://", 7) == 0)
                  || (url_len > 8 && strncmp(url, "https://", 8) == 0))
                || strlen(url) != url_len || strchr(url, '#') != NULL)
                luaL_argerror(L, 4, "opts.url: an http:// or https:// URL expected");
        }
        /* the string stays referenced by the opts table while we copy it below */
        lua_pop(L, 1);
        opt_seconds(L, 4, 4, "timeout", &timeout_ms);
        opt_seconds(L, 4, 4, "connect_timeout", &connect_timeout_ms);
        ty = compat_getfield(L, 4, "max_body");
        if (ty != LUA_TNIL) {
            if (!compat_tointeger_strict(L, -1, &max_body) || max_body < 1)
                luaL_argerror(L, 4, "opts.max_body: a positive integer (bytes) expected");
        }
        lua_pop(L, 1);
        ty = compat_getfield(L, 4, "ca_file");
        if (ty != LUA_TNIL) {
            if (ty != LUA_TSTRING)
                type_error(L, 4, "opts.ca_file", "string");
            ca_file = lua_tostring(L, -1);
        }
        lua_pop(L, 1);
        ty = compat_getfield(L, 4, "insecure");
        if (ty != LUA_TNIL) {
            if (ty != LUA_TBOOLEAN)
                type_error(L, 4, "opts.insecure", "boolean");
            insecure = lua_toboolean(L, -1);
        }
        lua_pop(L, 1);
    }

    wdt_client *c = (wdt_client *)compat_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    c->closed = 1;                       /* until everything is in place */
    wdt_buf_init(&c->body);
    wdt_buf_init(&c->query);
    compat_setmetatable(L, CLIENT_MT);   /* from here __gc frees whatever was copied */

    c->sid = dup_bytes(sid, sid_len);
    c->key = dup_bytes(key, key_len);
    c->secret = dup_bytes(app, (size_t)(colon - app));
    c->salt = dup_bytes(colon + 1, app_len - (size_t)(colon - app) - 1);
    c->url = dup_bytes(url, url_len);
    c->ca_file = ca_file ? dup_bytes(ca_file, strlen(ca_file)) : NULL;
    if (!c->sid || !c->key || !c->secret || !c->salt || !c->url || (ca_file && !c->ca_file)) {
        client_release(c);
        return luaL_error(L, "out of memory");
    }
    c->sid_len = sid_len;
    c->key_len = key_len;
    c->secret_len = (size_t)(colon - app);
    c->salt_len = app_len - c->secret_len - 1;
    c->url_len = url_len;
    c->insecure = insecure;
    c->max_body = (size_t)max_body;
    c->timeout_ms = timeout_ms;
    c->connect_timeout_ms = connect_timeout_ms;
    c->url_prefix = make_url_prefix(c, &c->url_prefix_len);
    if (c->url_prefix == NULL) {
        client_release(c);
        return luaL_error(L, "out of memory");
    }
    c->closed = 0;
    return 1;
}

/* ---- client methods ------------------------------------------------------------------------ */

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

/* cl:prepare(method, args, pager, timestamp) -> url, body */
static int l_client_prepare(lua_State *L)
{
    wdt_client *c = check_open_client(L);
    size_t method_len;
    const char *method = check_str(L, 2, "method", &method_len);
    lua_Integer n = 0, page_size = 0, page_no = 0, ts = 0;
    int calc_total = 0, paged = 0, oom = 0;
    char err[256];

    if (method_len == 0)
        luaL_argerror(L, 2, "method: a non-empty string expected");
    check_table(L, 3, "args");
    {
        int ty = compat_getfield(L, 3, "n");
        if (ty == LUA_TNIL)
            n = (lua_Integer)compat_rawlen(L, 3);
        else if (!compat_tointeger_strict(L, -1, &n) || n < 0 || n > 1000000)
            luaL_argerror(L, 3, "args.n: a non-negative integer expected");
        lua_pop(L, 1);
    }
    if (!lua_isnoneornil(L, 4)) {
        int ty;
        check_table(L, 4, "pager");
        paged = 1;
        compat_getfield(L, 4, "page_size");
        if (!compat_tointeger_strict(L, -1, &page_size) || page_size < 1)
            luaL_argerror(L, 4, "pager.page_size: a positive integer expected");
        lua_pop(L, 1);
        ty = compat_getfield(L, 4, "page_no");
        if (ty != LUA_TNIL && (!compat_tointeger_strict(L, -1, &page_no) || page_no < 0))
            luaL_argerror(L, 4, "pager.page_no: a non-negative integer expected");
        lua_pop(L, 1);
        ty = compat_getfield(L, 4, "calc_total");
        if (ty == LUA_TBOOLEAN)
            calc_total = lua_toboolean(L, -1);
        else if (ty == LUA_TNUMBER && compat_tointeger_strict(L, -1, &ts) && (ts == 0 || ts == 1))
            calc_total = (int)ts;
        else if (ty != LUA_TNIL)
            luaL_argerror(L, 4, "pager.calc_total: a boolean expected");
        lua_pop(L, 1);
    }
    if (lua_isnoneornil(L, 5)) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        ts = (lua_Integer)((long long)now.tv_sec - EPOCH_2012);
    } else if (!compat_tointeger_strict(L, 5, &ts)) {
        luaL_argerror(L, 5, lua_pushfstring(L, "timestamp: an integer expected, got %s",
                                            lua_type(L, 5) == LUA_TNUMBER ? "a fraction"
                                                                          : luaL_typename(L, 5)));
    }

    /* the body: a JSON array of args[1..n], nil encoded as null */
    wdt_buf *body = &c->body;
    wdt_buf_reset(body);
    oom |= wdt_buf_putc(body, '[');
    for (lua_Integer i = 1; i <= n && !oom; i++) {
        char root[48];
        if (i > 1)
            oom |= wdt_buf_putc(body, ',');
        lua_rawgeti(L, 3, (int)i);
        if (lua_isnil(L, -1)) {
            oom |= wdt_buf_puts(body, "null");
        } else {
            memcpy(root, "args[", 5);
            size_t rl = 5 + fmt_int(root + 5, i);
            root[rl] = ']';
            root[rl + 1] = '\0';
            if (wdt_json_encode(L, -1, root, body, err, sizeof err) != 0) {
                /* the codec's message as is: it names where ("args[1][2].x: ...") */
                wdt_buf_reset(body);
                lua_pushstring(L, err);
                return lua_error(L);
            }
        }
        lua_pop(L, 1);
    }
    oom |= wdt_buf_putc(body, ']');
    if (oom) {
        wdt_buf_reset(body);
        return luaL_error(L, "out of memory");
    }

    /* the public parameters and the sign, in wdt_param_cmp order (no sort needed):
     * body calc_total key method page_no page_size salt sid timestamp v */
    char ts_s[24], ps_s[24], pn_s[24];
    size_t ts_len = fmt_int(ts_s, ts), ps_len = 0, pn_len = 0;
    wdt_param p[10];
    size_t np = 0;
#define ADD(k, v, vl) (p[np].key = (k), p[np].key_len = sizeof(k) - 1, p[np].val = (v), p[np].val_len = (vl), np++)
    ADD("body", body->data, body->len);
    if (paged) {
        ps_len = fmt_int(ps_s, page_size);
        pn_len = fmt_int(pn_s, page_no);
        ADD("calc_total", calc_total ? "1" : "0", 1);
    }
    ADD("key", c->key, c->key_len);
    ADD("method", method, method_len);
    if (paged) {
        ADD("page_no", pn_s, pn_len);
        ADD("page_size", ps_s, ps_len);
    }
    ADD("salt", c->salt, c->salt_len);
    ADD("sid", c->sid, c->sid_len);
    ADD("timestamp", ts_s, ts_len);
    ADD("v", "1.0", 3);
#undef ADD
    char sign[33];
    if (wdt_sign_sorted(&c->signer, c->secret, c->secret_len, p, np, sign) != 0) {
        wdt_buf_reset(body);
        return luaL_error(L, "MD5 is not available from OpenSSL");
    }

    /* the URL: base?sid=..&key=..&salt=..&method=..&v=1.0&timestamp=..[&paging]&sign=..,
     * the part up to "method=" made once by client_new */
    wdt_buf *q = &c->query;
    wdt_buf_reset(q);
    oom |= wdt_buf_append(q, c->url_prefix, c->url_prefix_len);
    oom |= pct_encode(q, method, method_len);
    oom |= wdt_buf_append(q, "&v=1.0&timestamp=", 17);
    oom |= wdt_buf_append(q, ts_s, ts_len);
    if (paged) {
        oom |= wdt_buf_append(q, "&page_size=", 11);
        oom |= wdt_buf_append(q, ps_s, ps_len);
        oom |= wdt_buf_append(q, "&page_no=", 9);
        oom |= wdt_buf_append(q, pn_s, pn_len);
        oom |= wdt_buf_append(q, calc_total ? "&calc_total=1" : "&calc_total=0", 13);
    }
    oom |= wdt_buf_append(q, "&sign=", 6);
    oom |= wdt_buf_append(q, sign, 32);
    if (oom) {
        wdt_buf_reset(body);
        wdt_buf_wipe(q);
        return luaL_error(L, "out of memory");
    }
    lua_pushlstring(L, q->data, q->len);
    lua_pushlstring(L, body->data, body->len);
    wipe_used(q);
    wdt_buf_reset(body);
    return 2;
}

const char *wdt_core_kind_name(wdt_http_kind k)
{
    switch (k) {
    case WDT_HTTP_TIMEOUT:   return "timeout";
    case WDT_HTTP_TOO_LARGE: return "too_large";
    case WDT_HTTP_TLS:       return "tls";
    default:                 return "network";
    }
}

/* The open client at index 1, the send options in the table at opts_arg (nil: the
 * client's), and its pool of handles, created on first use (NULL: out of memory). */
wdt_http_pool *wdt_core_client_pool(lua_State *L, int opts_arg, wdt_send_opts *so)
{
    wdt_client *c = check_open_client(L);
    so->timeout_ms = c->timeout_ms;
    so->connect_timeout_ms = c->connect_timeout_ms;
    so->fresh_connect = 0;
    if (!lua_isnoneornil(L, opts_arg)) {
        check_table(L, opts_arg, "opts");
        opt_seconds(L, opts_arg, opts_arg, "timeout", &so->timeout_ms);
        opt_seconds(L, opts_arg, opts_arg, "connect_timeout", &so->connect_timeout_ms);
        /* fresh_connect: send on a new connection. libcurl silently sends a request once
         * more when a reused connection dies before any answer byte: not for writes that
         * must not be repeated (see doc/reliability.md). */
        int ty = compat_getfield(L, opts_arg, "fresh_connect");
        if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
            type_error(L, opts_arg, "opts.fresh_connect", "boolean");
        so->fresh_connect = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if (!c->pool_ready) {
        wdt_http_opts ho;
        ho.max_body = c->max_body;
        ho.ca_file = c->ca_file;
        ho.insecure = c->insecure;
        if (wdt_http_pool_init(&c->pool, &ho) != 0) {
            wdt_http_pool_free(&c->pool);
            return NULL;
        }
        c->pool_ready = 1;
    }
    return &c->pool;
}

/* cl:send(url, body, opts) -> status, body, date | nil, kind, message, sent */
static int l_client_send(lua_State *L)
{
    size_t url_len, body_len;
    const char *url = check_str(L, 2, "url", &url_len);
    const char *body = check_str(L, 3, "body", &body_len);
    wdt_send_opts so;
    wdt_http_result res;

    if (strlen(url) != url_len)
        luaL_argerror(L, 2, "url: contains a NUL byte");
    wdt_http_pool *pool = wdt_core_client_pool(L, 4, &so);
    if (pool == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "network");
        lua_pushliteral(L, "cannot create the libcurl handle (out of memory?)");
        lua_pushboolean(L, 0);
        return 4;
    }
    /* url and body are Lua strings anchored in this frame for the whole transfer */
    if (wdt_http_pool_post(pool, url, body, body_len, so.timeout_ms, so.connect_timeout_ms,
                           so.fresh_connect, &res) != WDT_HTTP_OK) {
        lua_pushnil(L);
        lua_pushstring(L, wdt_core_kind_name(res.kind));
        lua_pushstring(L, res.message);
        lua_pushboolean(L, res.sent);
        return 4;
    }
    wdt_http_req *r = pool->reqs[0];
    lua_pushinteger(L, (lua_Integer)res.status);
    lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
    if (r->date[0])
        lua_pushstring(L, r->date);
    else
        lua_pushnil(L);
    wdt_http_release_body(r);
    return 3;
}

/* ---- core.parse --------------------------------------------------------------------------- */

static int has_ci(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++) {
        size_t j = 0;
        while (j < m && (s[i + j] | 0x20) == needle[j])
            j++;
        if (j == m)
            return 1;
    }
    return 0;
}

/* A short, single-line excerpt of an error page for the message: the HTML <title> when
 * there is one, else the start of the body. Nothing when it looks like it quotes the
 * request (sign, salt) or is not text. */
static void http_snippet(const char *b, size_t n, char *out, size_t outlen)
{
    const size_t max = outlen - 4 < 120 ? outlen - 4 : 120;
    size_t o = 0;
    out[0] = '\0';
    if (b == NULL || n == 0)
        return;
    if (has_ci(b, n, "sign") || has_ci(b, n, "salt") || has_ci(b, n, "secret"))
        return;
    for (size_t i = 0; i + 7 <= n; i++) {
        if (b[i] == '<' && has_ci(b + i, 7, "<title>")) {
            size_t s = i + 7, e = s;
            while (e < n && b[e] != '<')
                e++;
            b += s;
            n = e - s;
            break;
        }
    }
    int space = 1;
    for (size_t i = 0; i < n && o < max; i++) {
        unsigned char ch = (unsigned char)b[i];
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            if (!space)
                out[o++] = ' ';
            space = 1;
            continue;
        }
        if (ch < 0x20 || ch == 0x7f) {       /* binary: say nothing */
            out[0] = '\0';
            return;
        }
        out[o++] = (char)ch;
        space = 0;
    }
    while (o > 0 && ((unsigned char)out[o - 1] & 0xC0) == 0x80)  /* don't cut a UTF-8 char */
        o--;
    if (o > 0 && ((unsigned char)out[o - 1] & 0xC0) == 0xC0)
        o--;
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

static int parse_fail(lua_State *L, const char *kind, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, kind);
    lua_pushstring(L, msg);
    lua_pushnil(L);
    lua_pushnil(L);
    return 5;
}

/* core.parse(http_status, body) -> response | nil, kind, message, api_status, response */
static int l_parse(lua_State *L)
{
    lua_Integer http_status = 0;
    size_t len = 0;
    const char *body;
    char err[256], msg[320];

    if (!compat_tointeger_strict(L, 1, &http_status))
        luaL_argerror(L, 1, lua_pushfstring(L, "http_status: an integer expected, got %s",
                                            luaL_typename(L, 1)));
    body = lua_isnoneornil(L, 2) ? NULL : check_str(L, 2, "body", &len);

    if (http_status < 200 || http_status > 299) {
        char snip[128];
        http_snippet(body, len, snip, sizeof snip);
        if (snip[0])
            snprintf(msg, sizeof msg, "HTTP %lld: %s", (long long)http_status, snip);
        else
            snprintf(msg, sizeof msg, "HTTP %lld", (long long)http_status);
        return parse_fail(L, "http", msg);
    }
    if (body == NULL)
        return parse_fail(L, "decode", "empty answer");
    if (wdt_json_decode(L, body, len, err, sizeof err) != 0) {
        snprintf(msg, sizeof msg, "the answer is not JSON: %s", err);
        return parse_fail(L, "decode", msg);
    }
    int resp = lua_gettop(L);
    lua_Integer status = 0;
    if (!lua_istable(L, resp))
        return parse_fail(L, "decode", "the answer is not a JSON object");
    lua_getfield(L, resp, "status");
    if (!compat_tointeger_strict(L, -1, &status))
        return parse_fail(L, "decode", "the answer has no integer 'status'");
    lua_pop(L, 1);
    if (status <= 0) {
        lua_settop(L, resp);
        return 1;
    }
    lua_pushnil(L);
    lua_pushliteral(L, "api");
    if (compat_getfield(L, resp, "message") != LUA_TSTRING || compat_rawlen(L, -1) == 0) {
        lua_pop(L, 1);
        lua_pushfstring(L, "status %d", (int)status);
    }
    lua_pushinteger(L, status);
    lua_pushvalue(L, resp);
    return 5;
}

/* ---- core.sign, encode, decode, time ----------------------------------------------------- */

/* core.sign(secret, params) -> 32 hex digits. params: string keys, string/number values. */
static int l_sign(lua_State *L)
{
    size_t secret_len;
    const char *secret = check_str(L, 1, "secret", &secret_len);
    size_t n = 0, i = 0;
    char hex[33];

    check_table(L, 2, "params");
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        n++;
        lua_pop(L, 1);
    }
    wdt_param *p = (wdt_param *)compat_newuserdata(L, (n ? n : 1) * sizeof *p);
    lua_createtable(L, (int)n, 0);       /* anchors the strings made from numbers */
    int anchor = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_argerror(L, 2, lua_pushfstring(L, "params: keys must be strings, got a %s key",
                                                luaL_typename(L, -2)));
        if (i >= n)
            luaL_argerror(L, 2, "params: changed while being read");
        p[i].key = lua_tolstring(L, -2, &p[i].key_len);
        int ty = lua_type(L, -1);
        if (ty == LUA_TNUMBER) {
            lua_Integer iv;
            if (compat_tointeger_strict(L, -1, &iv)) {
                snprintf(hex, sizeof hex, "%lld", (long long)iv);
                lua_pushstring(L, hex);
            } else {
                lua_pushvalue(L, -1);
                lua_tostring(L, -1);
            }
            p[i].val = lua_tolstring(L, -1, &p[i].val_len);
            lua_rawseti(L, anchor, (int)i + 1);
        } else if (ty == LUA_TSTRING) {
            p[i].val = lua_tolstring(L, -1, &p[i].val_len);
        } else {
            luaL_argerror(L, 2, lua_pushfstring(L, "params.%s: string or number expected, got %s",
                                                p[i].key, luaL_typename(L, -1)));
        }
        i++;
        lua_pop(L, 1);
    }
    if (wdt_sign(secret, secret_len, p, i, hex) != 0)
        return luaL_error(L, "MD5 is not available from OpenSSL");
    lua_pushlstring(L, hex, 32);
    return 1;
}

static int l_encode(lua_State *L)
{
    char err[256];
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    wdt_buf *b = push_bufbox(L);
    if (wdt_json_encode(L, 1, "value", b, err, sizeof err) != 0) {
        wdt_buf_free(b);
        lua_pushstring(L, err);
        return lua_error(L);
    }
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    wdt_buf_free(b);
    return 1;
}

static int l_decode(lua_State *L)
{
    size_t len;
    const char *s = check_str(L, 1, "s", &len);
    char err[256];
    if (wdt_json_decode(L, s, len, err, sizeof err) != 0) {
        lua_pushstring(L, err);
        return lua_error(L);
    }
    return 1;
}

static int l_unix_time(lua_State *L)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    lua_pushnumber(L, (lua_Number)now.tv_sec + (lua_Number)now.tv_nsec / 1e9);
    return 1;
}

/* core.sleep(seconds): blocks the thread; for the retry back-off outside nginx. */
static int l_sleep(lua_State *L)
{
    double s = (double)luaL_checknumber(L, 1);
    struct timespec req, rem;
    if (!(s > 0))
        return 0;
    if (s > 86400.0)
        s = 86400.0;
    req.tv_sec = (time_t)s;
    req.tv_nsec = (long)((s - (double)req.tv_sec) * 1e9);
    while (nanosleep(&req, &rem) != 0 && errno == EINTR)
        req = rem;
    return 0;
}

/* ---- the module ---------------------------------------------------------------------------- */

static const luaL_Reg client_methods[] = {
    { "prepare", l_client_prepare },
    { "send",    l_client_send },
    { "send_many", wdt_l_client_send_many },
    { "close",   l_client_close },
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

static const luaL_Reg core_funcs[] = {
    { "client_new", l_client_new },
    { "parse",      l_parse },
    { "sign",       l_sign },
    { "encode",     l_encode },
    { "decode",     l_decode },
    { "unix_time",  l_unix_time },
    { "sleep",      l_sleep },
    { NULL, NULL }
};

COMPAT_EXPORT int luaopen_wdt_core(lua_State *L);

COMPAT_EXPORT int luaopen_wdt_core(lua_State *L)
{
    static int curl_ready = 0;
    if (!curl_ready) {
        /* thread-safe in libcurl >= 7.84; hosts load modules from one thread anyway */
        if (wdt_http_global_init() != 0)
            return luaL_error(L, "wdt.core: curl_global_init failed");
        curl_ready = 1;
    }

    if (luaL_newmetatable(L, CLIENT_MT)) {
        compat_setfuncs(L, client_meta, 0);
        compat_newlib(L, client_methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, CLIENT_MT);
        lua_setfield(L, -2, "__metatable");   /* Lua code cannot swap the metatable */
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, BUFBOX_MT)) {
        lua_pushcfunction(L, bufbox_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, BUFBOX_MT);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);

    compat_newlib(L, core_funcs);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    wdt_json_push_array_mt(L);
    lua_setfield(L, -2, "array_mt");
    lua_pushliteral(L, WDT_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, curl_version());
    lua_setfield(L, -2, "curl_version");
    wdt_core_open_fs(L);
    return 1;
}
