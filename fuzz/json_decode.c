/* libFuzzer target: wdt_json_decode on arbitrary bytes.
 * Promises checked: never crashes; on success exactly one value is pushed, on failure
 * nothing is pushed and the message reads "at byte N: ..." with 1 <= N <= len + 1; a
 * decoded value encodes again, and decoding that encoding and encoding it once more gives
 * the same bytes (the encoder's output is canonical). */
#include "fuzz_lua.h"
#include "wdt_buf.h"
#include "wdt_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state();
    char err[256];
    int top = lua_gettop(L);

    int rc = wdt_json_decode(L, (const char *)data, size, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(lua_gettop(L) == top, "stack changed on failure");
        unsigned long n = 0;
        FUZZ_CHECK(sscanf(err, "at byte %lu:", &n) == 1, "message: %s", err);
        FUZZ_CHECK(n >= 1 && n <= size + 1, "byte %lu of %zu", n, size);
        return 0;
    }
    FUZZ_CHECK(lua_gettop(L) == top + 1, "one value expected, got %d", lua_gettop(L) - top);

    wdt_buf a, b;
    wdt_buf_init(&a);
    wdt_buf_init(&b);
    rc = wdt_json_encode(L, -1, "value", &a, err, sizeof err);
    FUZZ_CHECK(rc == 0, "a decoded value does not encode: %s", err);
    rc = wdt_json_decode(L, a.data, a.len, err, sizeof err);
    FUZZ_CHECK(rc == 0, "the encoding does not decode: %s\n%.*s", err, (int)a.len, a.data);
    rc = wdt_json_encode(L, -1, "value", &b, err, sizeof err);
    FUZZ_CHECK(rc == 0, "second encode: %s", err);
    FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
               "not canonical:\n%.*s\n%.*s", (int)a.len, a.data, (int)b.len, b.data);
    wdt_buf_free(&a);
    wdt_buf_free(&b);
    lua_settop(L, top);
    return 0;
}
