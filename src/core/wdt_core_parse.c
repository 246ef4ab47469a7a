/* core.parse(http_status, body) -> response | nil, err
 *
 *   response  the decoded answer, a table whose `status` is exactly 0
 *   err       { kind = "http" | "decode" | "api", message = ...,
 *               status = <API status> (kind "api"), response = <the answer> (kind "api") }
 *
 * An API status that is not an integer >= 0 is a "decode" error, never success. The
 * message of an "http" error quotes a short, single-line excerpt of the page, never one
 * that looks like it echoes the request; an "api" message is the server's, which
 * wdt.client scrubs of credentials before it reaches an error object.
 */
#include <stdio.h>
#include <string.h>

#include "wdt_compat.h"
#include "wdt_json.h"
#include "wdt_core_parse.h"

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

/* nil, {kind =, message =} */
static int parse_fail(lua_State *L, const char *kind, const char *msg)
{
    lua_pushnil(L);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
    return 2;
}

int wdt_core_parse(lua_State *L)
{
    lua_Integer http_status = 0;
    size_t len = 0;
    const char *body = NULL;
    char err[256], msg[320];

    if (!compat_tointeger_strict(L, 1, &http_status))
        luaL_argerror(L, 1, lua_pushfstring(L, "http_status: an integer expected, got %s",
                                            luaL_typename(L, 1)));
    if (!lua_isnoneornil(L, 2)) {
        if (lua_type(L, 2) != LUA_TSTRING)
            luaL_argerror(L, 2, lua_pushfstring(L, "body: string expected, got %s",
                                                luaL_typename(L, 2)));
        body = lua_tolstring(L, 2, &len);
    }
    lua_settop(L, 2);

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
    if (!compat_tointeger_strict(L, -1, &status) || status < 0)
        return parse_fail(L, "decode", "the answer has no integer 'status' >= 0");
    lua_pop(L, 1);
    if (status == 0) {
        /* `0.0` is a JSON spelling of 0: store the integer, so callers see status == 0 */
        lua_pushinteger(L, 0);
        lua_setfield(L, resp, "status");
        lua_settop(L, resp);
        return 1;
    }
    lua_pushnil(L);
    lua_createtable(L, 0, 4);
    lua_pushliteral(L, "api");
    lua_setfield(L, -2, "kind");
    if (compat_getfield(L, resp, "message") != LUA_TSTRING || compat_rawlen(L, -1) == 0) {
        lua_pop(L, 1);
        snprintf(msg, sizeof msg, "status %lld", (long long)status);   /* exact above 2^31 */
        lua_pushstring(L, msg);
    }
    lua_setfield(L, -2, "message");
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_pushvalue(L, resp);
    lua_setfield(L, -2, "response");
    return 2;
}
