/* libFuzzer target: the push's batch builder (core.push_batch, src/core/wdt_core_push_batch.c)
 * on orders decoded from the input (JSON, any shape): the decoded value as the order when
 * it is a table without metatable, and always wrapped as an order's lines
 * ({ tid = "T", orders = <value>, ... }) so that the lines' path is fuzzed too.
 * Promises, for field lists with every field the builder needs and every kind:
 *   - order(item, in_batch) never raises nor crashes, with in_batch holding the item's tid
 *     or empty; it returns a string only when in_batch lacks the tid (and it is the
 *     item's tid), false only when in_batch has it, and false with the tid held exactly
 *     when the tid without it;
 *   - after a tid, take() gives list 1 with one object: that tid, no "orders", its
 *     order_count the number of lines; and list 2 with one object per line, each with
 *     that tid; after nil or false, take() gives "[]" and "[]";
 *   - the item is never changed;
 *   - once another order is added, the lists taken before are refused by the codec (stale),
 *     and the next take holds that order only;
 *   - add(item[, lines]) never raises; it says true exactly when the codec writes the item
 *     and each line, and take() then holds those texts; nil, message: nothing. */
#include "fuzz_lua.h"
#include "wdt_buf.h"
#include "wdt_json.h"
#include "wdt_core_push.h"

static int batch_ref = LUA_NOREF, trade_ref = LUA_NOREF, line_ref = LUA_NOREF;
static int valid_ref = LUA_NOREF;

/* Every field order needs by name (field_needed in wdt_core_push_batch.c), of the kinds of
 * src/wdt/push/fields.lua, and a few others of each kind. */
static const char *const TRADE =
    "return { { 'tid', 'string', req = true, max = 40 },"
    " { 'pay_status', 'int', req = true, values = { [0] = true, [1] = true, [2] = true } },"
    " { 'order_count', 'int', req = true }, { 'goods_count', 'decimal', req = true },"
    " { 'trade_time', 'time', req = true }, { 'end_time', 'time', req = true, null_ok = true },"
    " { 'buyer_nick', 'string', max = 8 }, { 'is_auto_wms', 'bool', req = true },"
    " { 'warehouse_no', 'string', req = true, max = 40 }, { 'receivable', 'decimal' },"
    " { 'cust_data', 'other' } }";
static const char *const LINE =
    "return { { 'tid', 'string', req = true, max = 40 }, { 'oid', 'string', req = true, max = 40 },"
    " { 'status', 'int', req = true, values = { [10] = true, [30] = true, [90] = true } },"
    " { 'num', 'decimal', req = true }, { 'price', 'decimal' }, { 'spec_name', 'string', max = 5 },"
    " { 'pay_time', 'time' }, { 'gift_type', 'int' }, { 'json', 'other' } }";
/* An order both lists take, added after a take to make its lists stale. */
static const char *const VALID =
    "return { tid = 'V', pay_status = 1, trade_time = '2024-01-02 03:04:05', is_auto_wms = false,"
    " orders = { { oid = 'a', status = 30, num = 1 }, { oid = 'b', status = 90, num = 2.5 } } }";

/* The encoder of a list (a registry ref), from the core table on top. Only the encoder is
 * kept, all push_batch takes: the list and the checker are garbage from here on, and what
 * the encoder reads must live as long as it does. */
static int encoder(lua_State *L, const char *list)
{
    lua_getfield(L, -1, "push_checker");
    FUZZ_CHECK(luaL_dostring(L, list) == LUA_OK, "the list: %s", lua_tostring(L, -1));
    FUZZ_CHECK(lua_pcall(L, 1, 2, 0) == LUA_OK, "push_checker: %s", lua_tostring(L, -1));
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    return ref;
}

static void setup(lua_State *L)
{
    lua_newtable(L);
    wdt_core_open_push(L);
    wdt_core_open_push_batch(L);
    trade_ref = encoder(L, TRADE);
    line_ref = encoder(L, LINE);
    lua_getfield(L, -1, "push_batch");
    batch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    FUZZ_CHECK(luaL_dostring(L, VALID) == LUA_OK, "the valid order: %s", lua_tostring(L, -1));
    valid_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
}

/* The JSON text of the value at idx into b (emptied first); 0 or -1. */
static int text_of(lua_State *L, int idx, wdt_buf *b, char *err, size_t errlen)
{
    b->len = 0;
    return wdt_json_encode(L, idx, NULL, b, err, errlen);
}

/* Calls fn (a registry ref or the value at fn_idx) with nargs arguments on top; results
 * pushed (nres of them). Fails the run when it raises. */
static void call(lua_State *L, int fn_idx, int nargs, int nres, const char *what)
{
    lua_pushvalue(L, fn_idx);
    lua_insert(L, -nargs - 1);
    FUZZ_CHECK(lua_pcall(L, nargs, nres, 0) == LUA_OK, "%s raised: %s", what, lua_tostring(L, -1));
}

/* The decoder marks only an empty array (with the array metatable); a non-empty one is a
 * table of keys 1..n, an object a table of string keys. */
static int is_array(lua_State *L, int idx)
{
    if (!lua_istable(L, idx))
        return 0;
    if (lua_getmetatable(L, idx)) {
        wdt_json_push_array_mt(L);
        int same = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        return same && lua_rawlen(L, idx) == 0;
    }
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        n++;
        lua_pop(L, 1);
    }
    return n > 0 && n == (size_t)lua_rawlen(L, idx);
}

static int is_object(lua_State *L, int idx)
{
    if (!lua_istable(L, idx) || lua_rawlen(L, idx) != 0)
        return 0;
    if (!lua_getmetatable(L, idx))
        return 1;
    lua_pop(L, 1);
    return 0;
}

static int string_is(lua_State *L, int idx, const char *s, size_t n)
{
    size_t got;
    const char *p = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &got) : NULL;
    return p != NULL && got == n && memcmp(p, s, n) == 0;
}

/* take() at `take_idx`, the two lists checked: `trades` objects (0 or 1) in list 1, `lines`
 * in list 2, each of tid `tid`, the trade without "orders" and, when `counted`, with
 * order_count `lines`. The raw lists stay on the stack (two values pushed). */
static void check_take(lua_State *L, int take_idx, const char *tid, size_t tid_len, int trades,
                       size_t lines, int counted, wdt_buf *b)
{
    char err[256];
    call(L, take_idx, 0, 2, "take");
    int raw = lua_gettop(L) - 1;
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, raw);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, raw + 1);
    lua_rawseti(L, -2, 2);
    FUZZ_CHECK(text_of(L, lua_gettop(L), b, err, sizeof err) == 0, "the lists taken do not encode: %s", err);
    FUZZ_CHECK(wdt_json_decode(L, b->data, b->len, err, sizeof err) == 0, "the lists' text does not decode: %s: %.*s",
               err, (int)(b->len > 400 ? 400 : b->len), b->data);
    int both = lua_gettop(L);
    FUZZ_CHECK(is_array(L, both) && (size_t)lua_rawlen(L, both) == 2, "the two lists are not a list of two");
    for (int k = 1; k <= 2; k++) {
        lua_rawgeti(L, both, k);
        int list = lua_gettop(L);
        size_t want = k == 1 ? (size_t)trades : lines;
        FUZZ_CHECK(is_array(L, list), "list %d is not an array", k);
        FUZZ_CHECK((size_t)lua_rawlen(L, list) == want, "list %d holds %zu objects, %zu expected",
                   k, (size_t)lua_rawlen(L, list), want);
        for (size_t i = 1; i <= want; i++) {
            lua_rawgeti(L, list, (lua_Integer)i);
            int obj = lua_gettop(L);
            FUZZ_CHECK(is_object(L, obj), "list %d[%zu] is not an object", k, i);
            lua_getfield(L, obj, "tid");
            FUZZ_CHECK(string_is(L, -1, tid, tid_len), "list %d[%zu].tid is not the order's", k, i);
            if (k == 1) {
                lua_getfield(L, obj, "orders");
                FUZZ_CHECK(lua_isnil(L, -1), "the trade keeps its 'orders'");
                lua_getfield(L, obj, "order_count");
                FUZZ_CHECK(!counted || (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) == (lua_Number)lines),
                           "the trade's order_count is not its %zu line(s)", lines);
            }
            lua_settop(L, obj - 1);
        }
        lua_settop(L, list - 1);
    }
    lua_settop(L, raw + 1);
}

/* One item through a new batch: order with the tid held, then with in_batch empty, the
 * lists taken and checked, then made stale by another order; then add. */
static void run_item(lua_State *L, int item)
{
    char err[256];
    wdt_buf before, after, b;
    wdt_buf_init(&before);
    wdt_buf_init(&after);
    wdt_buf_init(&b);
    int snap = text_of(L, item, &before, err, sizeof err) == 0;

    lua_rawgeti(L, LUA_REGISTRYINDEX, batch_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, trade_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, line_ref);
    FUZZ_CHECK(lua_pcall(L, 2, 3, 0) == LUA_OK, "push_batch: %s", lua_tostring(L, -1));
    const int order = lua_gettop(L) - 2, add = order + 1, take = order + 2;

    lua_getfield(L, item, "tid");
    size_t tid_len = 0;
    const char *tid = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &tid_len) : NULL;
    int held_result = -1;       /* -1 not tried, 0 nil, 1 false */
    if (tid) {
        lua_pushvalue(L, item);
        lua_newtable(L);
        lua_pushvalue(L, -3);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
        call(L, order, 2, 1, "order (tid held)");
        FUZZ_CHECK(lua_isnil(L, -1) || (lua_isboolean(L, -1) && !lua_toboolean(L, -1)),
                   "order gave %s with the tid in the batch", luaL_typename(L, -1));
        held_result = !lua_isnil(L, -1);
        lua_pop(L, 1);
        check_take(L, take, "", 0, 0, 0, 0, &b);
        lua_pop(L, 2);
    }

    lua_pushvalue(L, item);
    lua_newtable(L);
    call(L, order, 2, 1, "order");
    int got = lua_gettop(L);
    FUZZ_CHECK(lua_isnil(L, got) || lua_type(L, got) == LUA_TSTRING,
               "order gave %s with an empty batch", luaL_typename(L, got));
    size_t lines = 0;
    if (lua_isnil(L, got)) {
        FUZZ_CHECK(held_result != 1, "order gave false with the tid held, nil without it");
        check_take(L, take, "", 0, 0, 0, 0, &b);
    } else {
        FUZZ_CHECK(tid != NULL && string_is(L, got, tid, tid_len), "order gave a tid that is not the item's");
        FUZZ_CHECK(held_result != 0, "order gave nil with the tid held, the tid without it");
        lua_getfield(L, item, "orders");
        lines = lua_istable(L, -1) ? (size_t)lua_rawlen(L, lua_gettop(L)) : 0;
        lua_pop(L, 1);
        check_take(L, take, tid, tid_len, 1, lines, 1, &b);
    }
    int stale = lua_gettop(L) - 1;

    if (snap) {
        FUZZ_CHECK(text_of(L, item, &after, err, sizeof err) == 0, "the item no longer encodes: %s", err);
        FUZZ_CHECK(after.len == before.len && memcmp(after.data, before.data, after.len) == 0,
                   "order changed the item");
    }

    /* another order: the lists taken are stale, the next take holds it only */
    lua_rawgeti(L, LUA_REGISTRYINDEX, valid_ref);
    lua_newtable(L);
    call(L, order, 2, 1, "order (the valid one)");
    FUZZ_CHECK(string_is(L, -1, "V", 1), "the valid order was not taken");
    lua_pop(L, 1);
    for (int k = 0; k < 2; k++) {
        lua_createtable(L, 1, 0);
        lua_pushvalue(L, stale + k);
        lua_rawseti(L, -2, 1);
        FUZZ_CHECK(text_of(L, lua_gettop(L), &b, err, sizeof err) != 0, "list %d taken before was read after another order", k + 1);
        lua_pop(L, 1);
    }
    check_take(L, take, "V", 1, 1, 2, 1, &b);

    /* add: the item as a record, and its lines when a table: true and both lists hold
     * their texts as the codec writes them alone, or nil, message and nothing. Compared as
     * text, not decoded: a record nested as deep as the codec writes (1000) makes a list
     * one level deeper than the decoder takes. */
    wdt_buf want[2];
    wdt_buf_init(&want[0]);
    wdt_buf_init(&want[1]);
    int can = wdt_buf_putc(&want[0], '[') == 0 && wdt_buf_putc(&want[1], '[') == 0 &&
              wdt_json_encode(L, item, NULL, &want[0], err, sizeof err) == 0;
    lua_pushvalue(L, item);
    lua_getfield(L, item, "orders");
    int with_lines = lua_istable(L, -1);
    for (size_t i = 1, n = with_lines ? (size_t)lua_rawlen(L, -1) : 0; can && i <= n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i);
        can = (i == 1 || wdt_buf_putc(&want[1], ',') == 0) &&
              wdt_json_encode(L, lua_gettop(L), NULL, &want[1], err, sizeof err) == 0;
        lua_pop(L, 1);
    }
    if (!with_lines)
        lua_pop(L, 1);
    call(L, add, with_lines ? 2 : 1, 2, "add");
    int added = lua_toboolean(L, -2);
    FUZZ_CHECK(added ? lua_isnil(L, -1) : lua_isnil(L, -2) && lua_type(L, -1) == LUA_TSTRING,
               "add's results are not true or nil, message");
    FUZZ_CHECK(added == can, "add gave %s for what the codec %s", added ? "true" : lua_tostring(L, -1),
               can ? "writes" : "refuses");
    lua_pop(L, 2);
    call(L, take, 0, 2, "take after add");
    for (int k = 0; k < 2; k++) {
        if (!added)
            want[k].len = 1;
        FUZZ_CHECK(wdt_buf_putc(&want[k], ']') == 0, "out of memory");
        FUZZ_CHECK(text_of(L, lua_gettop(L) - 1 + k, &b, err, sizeof err) == 0, "list %d after add: %s", k + 1, err);
        FUZZ_CHECK(b.len == want[k].len && memcmp(b.data, want[k].data, b.len) == 0,
                   "list %d after add is not what was added", k + 1);
        wdt_buf_free(&want[k]);
    }
    wdt_buf_free(&before);
    wdt_buf_free(&after);
    wdt_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state();
    char err[256];
    if (batch_ref == LUA_NOREF)
        setup(L);
    int top = lua_gettop(L);
    if (wdt_json_decode(L, (const char *)data, size, err, sizeof err) != 0)
        return 0;
    int value = lua_gettop(L);
    if (lua_istable(L, value) && !lua_getmetatable(L, value))
        run_item(L, value);
    lua_settop(L, value);
    /* the value as an order's lines, the trade otherwise valid */
    FUZZ_CHECK(luaL_dostring(L, "return { tid = 'T', pay_status = 2, trade_time = '2024-01-02 03:04:05',"
                                " is_auto_wms = false }") == LUA_OK, "the wrapper");
    lua_pushvalue(L, value);
    lua_setfield(L, -2, "orders");
    run_item(L, lua_gettop(L));
    lua_settop(L, top);
    return 0;
}
