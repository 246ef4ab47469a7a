/* wdt_json: the exact JSON codec of the wdt core (Lua 5.4 and LuaJIT / Lua 5.1 API).
 *
 * Encoding rules:
 *   - compact output, object keys in byte-wise sorted order (same table -> same bytes);
 *   - strings: raw UTF-8 (validated), `"` `\` and control characters escaped, `/` not;
 *   - Lua 5.4 integers written exactly; floats as the shortest of %.15g/%.16g/%.17g that
 *     reads back to the same double, always with a `.` or an exponent (`1.0`, `1e+300`);
 *     on LuaJIT an integral double with |x| < 2^53 is written as an integer;
 *   - nil and lightuserdata(NULL) (`null`, the same value as cjson.null) -> null;
 *   - a table whose metatable is the array marker is an array (empty too: `[]`), a table
 *     with keys exactly 1..n (n >= 1) is an array, a table with only string keys is an
 *     object, an empty unmarked table is `{}`; anything else is an error;
 *   - errors name where in the value: "args[1][2].sync_id: cannot encode a function",
 *     "value.a.b: cycle (table contains itself)"; nesting is limited to 1000 levels.
 *
 * Decoding is the full RFC 8259 grammar, strict. Integers that fit int64 become Lua
 * integers (LuaJIT: doubles), other numbers floats; `null` becomes lightuserdata(NULL);
 * empty arrays get the array marker metatable; errors read "at byte N: ..." where N is
 * 1-based (the offending byte is s:sub(N, N); N = #s + 1 at the end of the input).
 *
 * None of these functions raises a Lua error (memory errors included: the work runs in
 * a protected call) and the Lua stack is left as it was on failure.
 */
#ifndef WDT_JSON_H
#define WDT_JSON_H

#include <stddef.h>
#include <lua.h>

#include "wdt_buf.h"

/* Registry key of the array marker metatable. */
#define WDT_JSON_ARRAY_MT "wdt.json.array_mt"
/* Maximum nesting of arrays/objects, for encoding and decoding. */
#define WDT_JSON_MAX_DEPTH 1000

/* Append the JSON for the value at `idx` to `out`. 0 on success; -1 with a message in
 * err (NUL-terminated) naming where in the value, e.g. "args[1][2].sync_id: cannot encode
 * a function". `root` is the name of the top value in such paths ("args", "value"; NULL
 * means "value"). On failure `out` is truncated back to its length at the call. */
int wdt_json_encode(lua_State *L, int idx, const char *root, wdt_buf *out, char *err, size_t errlen);

/* Decode `len` bytes; on success push one value and return 0; on failure push nothing and
 * return -1 with "at byte N: ..." in err. Never raises, never crashes on any input. */
int wdt_json_decode(lua_State *L, const char *s, size_t len, char *err, size_t errlen);

/* The array marker metatable, pushed from the registry (created on first use). */
void wdt_json_push_array_mt(lua_State *L);

/* Registry key of the metatable of {text}: JSON text that the push's encoder
 * (wdt_core_push.c) wrote and checked by these rules, written as it is. Only C code makes
 * such tables; they are not a public interface.
 * The text may also stay in C: {src, k, serial}, src a full userdata with the metatable
 * WDT_JSON_RAW_SRC_MT whose memory begins with a wdt_json_raw_src (the push's batch
 * builder, wdt_core_push_batch.c): its text k (1 or 2), as long as src->serial is still
 * `serial` (the owner bumps it before it changes the text); a stale one is an error. */
#define WDT_JSON_RAW_MT "wdt.json.raw_mt"
#define WDT_JSON_RAW_SRC_MT "wdt.core.push_batch"
typedef struct wdt_json_raw_src {
    const char *text[2];
    size_t len[2];
    lua_Integer serial;
} wdt_json_raw_src;
void wdt_json_push_raw_mt(lua_State *L);

/* Append the JSON of the string, number, boolean, nil or null at idx to out, by the rules
 * above. 0 on success; -1, out unchanged, for anything else or what cannot be written
 * (a table, NaN, inf, invalid UTF-8, out of memory). Never raises a Lua error. */
int wdt_json_append_scalar(lua_State *L, int idx, wdt_buf *out);
/* The same for a string given by its bytes, and for an integer (no Lua value needed). */
int wdt_json_put_string(wdt_buf *out, const char *s, size_t n);
int wdt_json_put_integer(wdt_buf *out, long long v);

#endif
