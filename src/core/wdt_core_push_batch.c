/* core.push_batch: the lists of one push call, written as the items come. A push sends
 * batches of up to 100 items; each item is checked and written straight into the
 * method's lists, so a call's body is put together without a Lua table or string per
 * item. The checks are the field lists' (core.push_checker, wdt_core_push.c); what an
 * order adds (its lines, their tid, oids and num, the derived counts) is done here, as
 * src/wdt/push/validate.lua does it. Whatever this pass does not decide goes the Lua way.
 *
 *   order, add, take = core.push_batch([encode_trade, encode_line])
 *     encode_trade, encode_line: the encoders core.push_checker made for fields.trade and
 *     fields.line (their schemas are read from them; order needs both).
 *   order(item, in_batch) -> tid | false | nil
 *     tid: the order passed every check: its trade is written into list 1 and its lines
 *     into list 2 (the caller records in_batch[tid] = true). false: it passed, but
 *     in_batch[tid] is set: the batch must be sent first. nil: the Lua side decides
 *     (validate.prepare; also every order with `discounts`). Nothing is written unless tid
 *     is returned; item is never changed.
 *   add(record[, lines]) -> true | nil, message
 *     a record the Lua side prepared (a table or a raw JSON value), written by the codec
 *     into list 1, and each element of `lines` into list 2; nothing written on failure.
 *   take() -> list1, list2
 *     the two lists as raw JSON arrays (WDT_JSON_RAW_MT) that read the builder's text;
 *     they go stale (the codec refuses them) once anything is added again, when the
 *     builder starts the next lists.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "wdt_compat.h"
#include "wdt_buf.h"
#include "wdt_json.h"
#include "wdt_push_schema.h"
#include "wdt_core_push.h"

#define BATCH_MT WDT_JSON_RAW_SRC_MT   /* the codec reads take's raw values by it */
#define MAX_LINES 64                /* an order with more lines goes the Lua way */

enum { KEPT_TID, KEPT_OID, KEPT_NUM, N_LINE_KEPT };
enum { KEPT_OC, KEPT_GC, KEPT_WMS, N_TRADE_KEPT };
/* upvalues of order, add and take */
enum { U_BATCH = 1, U_TRADE, U_LINE, U_RAW_MT, U_TID, U_ORDERS, U_EMPTY, U_END_TIME,
       U_ORDER_COUNT, U_GOODS_COUNT, U_WAREHOUSE_NO, U_DISCOUNTS, N_UPVALUES = U_DISCOUNTS };

typedef struct push_batch {
    wdt_json_raw_src src;           /* first: what take's raw values read (wdt_json.h) */
    int taken;                      /* the lists were taken: emptied at the next add */
    wdt_buf list[2];                /* "[" then the records, comma-separated */
    size_t count[2];
    const push_schema *trade, *line;
    /* the field indexes of the pairs an order derives */
    int line_tid, trade_order_count, trade_goods_count, trade_end_time, trade_warehouse_no;
    signed char line_keep[WDT_PUSH_MAX_FIELDS], trade_keep[WDT_PUSH_MAX_FIELDS];
} push_batch;

/* Before anything is added: lists taken are emptied, and the raw values take gave for
 * them go stale (the codec refuses them rather than read changed text). */
static void start_adding(push_batch *pb)
{
    if (!pb->taken)
        return;
    for (int k = 0; k < 2; k++) {
        pb->list[k].len = 1;
        pb->count[k] = 0;
    }
    pb->taken = 0;
    pb->src.serial++;
    for (int k = 0; k < 2; k++) {           /* nothing to read until the next take */
        pb->src.text[k] = NULL;
        pb->src.len[k] = 0;
    }
}

/* Writes the pair (key at upvalue `key`, the value on top) when the record lacks it. */
static int put_derived(lua_State *L, const push_schema *sc, int fi, int key, push_rec *r)
{
    if (r->present & ((uint64_t)1 << fi)) {
        lua_pop(L, 1);
        return 0;
    }
    lua_pushvalue(L, lua_upvalueindex(key));
    lua_insert(L, -2);
    int rc = wdt_push_put_field(L, sc, fi, r);
    lua_pop(L, 2);
    return rc;
}

/* The sum of the lines' num, as Lua adds them: integers stay integers, a float makes the
 * sum a float. */
typedef struct num_sum {
    int is_int;
    long long i;
    double d;
} num_sum;

static int add_num(num_sum *s, const push_value *v)
{
    if (s->is_int && v->is_int) {
#if defined(__GNUC__) || defined(__clang__)
        return __builtin_add_overflow(s->i, v->i, &s->i) ? -1 : 0;
#else
        if ((v->i > 0 && s->i > LLONG_MAX - v->i) || (v->i < 0 && s->i < LLONG_MIN - v->i))
            return -1;
        s->i += v->i;
        return 0;
#endif
    }
    if (s->is_int) {
        s->d = (double)s->i;
        s->is_int = 0;
    }
    s->d += v->d;
    return 0;
}

/* goods_count as validate.lua derives it: math.floor(sum) when that equals the sum. */
static void push_sum(lua_State *L, const num_sum *s)
{
#if COMPAT_HAS_INTEGERS
    if (s->is_int) {
        lua_pushinteger(L, (lua_Integer)s->i);
        return;
    }
    if (s->d == floor(s->d) && s->d >= -9223372036854775808.0 && s->d < 9223372036854775808.0) {
        lua_pushinteger(L, (lua_Integer)s->d);
        return;
    }
    lua_pushnumber(L, (lua_Number)s->d);
#else
    lua_pushnumber(L, (lua_Number)(s->is_int ? (double)s->i : s->d));
#endif
}

/* 1 when a given goods_count agrees with the sum as validate.lua compares them. */
static int same_count(const push_value *gc, const num_sum *s)
{
    if (gc->is_int && s->is_int)
        return gc->i == s->i;
    double sum = s->is_int ? (double)s->i : s->d;
    return gc->d == sum || fabs(gc->d - sum) <= 1e-4;
}

static int begin_record(wdt_buf *b, size_t count)
{
    return count > 0 ? wdt_buf_putc(b, ',') : 0;
}

/* The lines of the order (the list at 4, n of them) into list 2; the order's tid at 3. */
static int put_lines(lua_State *L, push_batch *pb, size_t n, num_sum *sum)
{
    const push_schema *ls = pb->line;
    const char *oid[MAX_LINES];
    size_t oid_len[MAX_LINES], tid_len;
    const char *tid = lua_tolstring(L, 3, &tid_len);
    wdt_buf *b = &pb->list[1];

    for (size_t i = 0; i < n; i++) {
        push_value kept[N_LINE_KEPT];
        push_rec r = { b, 0, 0, 1, pb->line_keep, kept };
        lua_rawgeti(L, 4, (int)i + 1);
        if (lua_type(L, 5) != LUA_TTABLE || lua_getmetatable(L, 5))
            return -1;
        if (begin_record(b, pb->count[1] + i) != 0 || wdt_push_put_fields(L, ls, 5, NULL, 0, &r) != 0)
            return -1;
        if (r.present & ((uint64_t)1 << pb->line_tid)) {
            /* a line's own tid must be the order's */
            if (kept[KEPT_TID].type != LUA_TSTRING || kept[KEPT_TID].n != tid_len ||
                memcmp(kept[KEPT_TID].s, tid, tid_len) != 0)
                return -1;
        } else {
            lua_pushvalue(L, 3);
            if (put_derived(L, ls, pb->line_tid, U_TID, &r) != 0)
                return -1;
        }
        if ((r.seen & ls->required) != ls->required || wdt_buf_putc(b, '}') != 0)
            return -1;
        /* required and passed: oid is a string, num a finite number */
        oid[i] = kept[KEPT_OID].s;
        oid_len[i] = kept[KEPT_OID].n;
        for (size_t j = 0; j < i; j++)
            if (oid_len[j] == oid_len[i] && memcmp(oid[j], oid[i], oid_len[i]) == 0)
                return -1;
        if (add_num(sum, &kept[KEPT_NUM]) != 0)
            return -1;
        lua_settop(L, 4);
    }
    return 0;
}

/* The trade (the item at 1 without `orders`) into list 1, with the pairs it derives. */
static int put_trade(lua_State *L, push_batch *pb, size_t n, const num_sum *sum)
{
    const push_schema *ts = pb->trade;
    push_value kept[N_TRADE_KEPT];
    push_rec r = { &pb->list[0], 0, 0, 1, pb->trade_keep, kept };
    kept[KEPT_WMS].type = LUA_TNIL;
    if (begin_record(r.out, pb->count[0]) != 0 || wdt_push_put_fields(L, ts, 1, "orders", 6, &r) != 0)
        return -1;
    if (kept[KEPT_WMS].type == LUA_TBOOLEAN && kept[KEPT_WMS].i == 0) {
        lua_pushvalue(L, lua_upvalueindex(U_EMPTY));     /* warehouse_no "" unless is_auto_wms */
        if (put_derived(L, ts, pb->trade_warehouse_no, U_WAREHOUSE_NO, &r) != 0)
            return -1;
    }
    lua_pushlightuserdata(L, NULL);
    if (put_derived(L, ts, pb->trade_end_time, U_END_TIME, &r) != 0)
        return -1;
    if (r.present & ((uint64_t)1 << pb->trade_order_count)) {
        const push_value *oc = &kept[KEPT_OC];
        if (oc->type != LUA_TNUMBER || oc->d != (double)n)
            return -1;
    } else {
        lua_pushinteger(L, (lua_Integer)n);
        if (put_derived(L, ts, pb->trade_order_count, U_ORDER_COUNT, &r) != 0)
            return -1;
    }
    if (r.present & ((uint64_t)1 << pb->trade_goods_count)) {
        if (kept[KEPT_GC].type != LUA_TNUMBER || !same_count(&kept[KEPT_GC], sum))
            return -1;
    } else {
        push_sum(L, sum);
        if (put_derived(L, ts, pb->trade_goods_count, U_GOODS_COUNT, &r) != 0)
            return -1;
    }
    if ((r.seen & ts->required) != ts->required)
        return -1;
    return wdt_buf_putc(r.out, '}');
}

static int l_order(lua_State *L)
{
    push_batch *pb = (push_batch *)lua_touserdata(L, lua_upvalueindex(U_BATCH));
    if (!pb->trade)
        return luaL_error(L, "push_batch: order needs the trade and line encoders");
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_type(L, 1) != LUA_TTABLE)
        return 0;
    lua_settop(L, 2);
    luaL_checkstack(L, 12, "push batch");
    if (lua_getmetatable(L, 1))                       /* plain tables only: raw access */
        return 0;
    lua_pushvalue(L, lua_upvalueindex(U_DISCOUNTS));  /* an order's discounts: the Lua way */
    lua_rawget(L, 1);
    if (!lua_isnil(L, -1))
        return 0;
    lua_pop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(U_TID));
    lua_rawget(L, 1);                                 /* 3: tid */
    if (lua_type(L, 3) != LUA_TSTRING || compat_rawlen(L, 3) == 0)
        return 0;
    lua_pushvalue(L, lua_upvalueindex(U_ORDERS));
    lua_rawget(L, 1);                                 /* 4: the lines */
    if (lua_type(L, 4) != LUA_TTABLE)
        return 0;
    if (lua_getmetatable(L, 4)) {                     /* a decoded list may carry the marker */
        wdt_json_push_array_mt(L);
        if (!lua_rawequal(L, -1, -2))
            return 0;
        lua_settop(L, 4);
    }
    size_t n = compat_rawlen(L, 4);
    if (n == 0 || n > MAX_LINES)
        return 0;
    start_adding(pb);
    size_t len0 = pb->list[0].len, len1 = pb->list[1].len;
    num_sum sum = { 1, 0, 0.0 };
    int rc = put_lines(L, pb, n, &sum);
    lua_settop(L, 4);
    if (rc == 0)
        rc = put_trade(L, pb, n, &sum);
    lua_settop(L, 3);
    if (rc == 0) {
        lua_pushvalue(L, 3);
        lua_rawget(L, 2);
        rc = lua_isnil(L, -1) ? 0 : 1;    /* a valid order whose tid the batch has: false */
        lua_pop(L, 1);
    }
    if (rc != 0) {
        pb->list[0].len = len0;
        pb->list[1].len = len1;
        if (rc < 0)
            return 0;
        lua_pushboolean(L, 0);
        return 1;
    }
    pb->count[0] += 1;
    pb->count[1] += n;
    return 1;
}

/* Appends the value at idx to list k by the codec; 0, or -1 with the message in err. */
static int add_value(lua_State *L, push_batch *pb, int k, int idx, const char *root, char *err, size_t errlen)
{
    if (begin_record(&pb->list[k], pb->count[k]) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (wdt_json_encode(L, idx, root, &pb->list[k], err, errlen) != 0)
        return -1;
    pb->count[k]++;
    return 0;
}

static int l_add(lua_State *L)
{
    push_batch *pb = (push_batch *)lua_touserdata(L, lua_upvalueindex(U_BATCH));
    char err[256];
    luaL_checkany(L, 1);
    int has_lines = !lua_isnoneornil(L, 2);
    if (has_lines)
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    start_adding(pb);
    size_t len[2] = { pb->list[0].len, pb->list[1].len }, count[2] = { pb->count[0], pb->count[1] };
    int rc = add_value(L, pb, 0, 1, "record", err, sizeof err);
    for (size_t i = 1, n = has_lines ? compat_rawlen(L, 2) : 0; rc == 0 && i <= n; i++) {
        lua_rawgeti(L, 2, (int)i);
        rc = add_value(L, pb, 1, 3, "line", err, sizeof err);
        lua_settop(L, 2);
    }
    if (rc != 0) {
        for (int k = 0; k < 2; k++) {
            pb->list[k].len = len[k];
            pb->count[k] = count[k];
        }
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* The lists as raw values that read the builder's own text ({batch, k, serial}): a
 * call's body copies them once, and no Lua string is made of them. */
static int l_take(lua_State *L)
{
    push_batch *pb = (push_batch *)lua_touserdata(L, lua_upvalueindex(U_BATCH));
    start_adding(pb);                                 /* a second take: empty lists */
    for (int k = 0; k < 2; k++) {
        wdt_buf *b = &pb->list[k];
        if (b->cap - b->len < 2 && wdt_buf_reserve(b, 1) != 0)
            return luaL_error(L, "push_batch: out of memory");
        b->data[b->len] = ']';                        /* closed in place, not counted */
        pb->src.text[k] = b->data;
        pb->src.len[k] = b->len + 1;
    }
    pb->src.serial++;
    pb->taken = 1;
    for (int k = 1; k <= 2; k++) {
        lua_createtable(L, 3, 0);
        lua_pushvalue(L, lua_upvalueindex(U_BATCH));
        lua_rawseti(L, -2, 1);
        lua_pushinteger(L, k);
        lua_rawseti(L, -2, 2);
        lua_pushinteger(L, pb->src.serial);
        lua_rawseti(L, -2, 3);
        lua_pushvalue(L, lua_upvalueindex(U_RAW_MT));
        lua_setmetatable(L, -2);
    }
    return 2;
}

static int batch_gc(lua_State *L)
{
    push_batch *pb = (push_batch *)lua_touserdata(L, 1);
    wdt_buf_free(&pb->list[0]);
    wdt_buf_free(&pb->list[1]);
    return 0;
}

static const luaL_Reg batch_meta[] = {
    { "__gc", batch_gc },
    { NULL, NULL }
};

/* The schema behind a core.push_checker encoder (its first upvalue), checked. */
static const push_schema *schema_of(lua_State *L, int arg)
{
    luaL_checktype(L, arg, LUA_TFUNCTION);
    if (!lua_iscfunction(L, arg) || lua_getupvalue(L, arg, 1) == NULL)
        luaL_argerror(L, arg, "an encoder of core.push_checker expected");
    if (!lua_getmetatable(L, -1))
        luaL_argerror(L, arg, "an encoder of core.push_checker expected");
    luaL_getmetatable(L, WDT_PUSH_SCHEMA_MT);
    if (!lua_rawequal(L, -1, -2))
        luaL_argerror(L, arg, "an encoder of core.push_checker expected");
    const push_schema *sc = (const push_schema *)lua_touserdata(L, -3);
    lua_pop(L, 3);
    return sc;
}

/* The index of a field the order's checks read, with the rule they count on (put_lines
 * takes a line's oid and num as given once its required fields passed); raises otherwise. */
static int field_needed(lua_State *L, const push_schema *sc, const char *name, int kind, int required,
                        signed char *keep, int slot)
{
    int fi = wdt_push_field_named(sc, name);
    if (fi < 0)
        luaL_error(L, "push_batch: the field list has no '%s'", name);
    const field_rule *f = &sc->f[fi];
    if (f->kind != kind || (required && (!f->req || f->null_ok)))
        luaL_error(L, "push_batch: the field '%s' has not the rule the order's checks need", name);
    if (keep)
        keep[fi] = (signed char)slot;
    return fi;
}

static int l_push_batch(lua_State *L)
{
    int orders = !lua_isnoneornil(L, 1);
    const push_schema *ts = orders ? schema_of(L, 1) : NULL, *ls = orders ? schema_of(L, 2) : NULL;
    lua_settop(L, 2);
    push_batch *pb = (push_batch *)compat_newuserdata(L, sizeof *pb);   /* 3 */
    memset(pb, 0, sizeof *pb);
    wdt_buf_init(&pb->list[0]);
    wdt_buf_init(&pb->list[1]);
    compat_setmetatable(L, BATCH_MT);
    if (wdt_buf_putc(&pb->list[0], '[') != 0 || wdt_buf_putc(&pb->list[1], '[') != 0)
        return luaL_error(L, "push_batch: out of memory");
    memset(pb->line_keep, -1, sizeof pb->line_keep);
    memset(pb->trade_keep, -1, sizeof pb->trade_keep);
    if (orders) {
        pb->trade = ts;
        pb->line = ls;
        pb->line_tid = field_needed(L, ls, "tid", K_STRING, 1, pb->line_keep, KEPT_TID);
        field_needed(L, ls, "oid", K_STRING, 1, pb->line_keep, KEPT_OID);
        field_needed(L, ls, "num", K_DECIMAL, 1, pb->line_keep, KEPT_NUM);
        pb->trade_order_count = field_needed(L, ts, "order_count", K_INT, 1, pb->trade_keep, KEPT_OC);
        pb->trade_goods_count = field_needed(L, ts, "goods_count", K_DECIMAL, 1, pb->trade_keep, KEPT_GC);
        field_needed(L, ts, "is_auto_wms", K_BOOL, 1, pb->trade_keep, KEPT_WMS);
        pb->trade_end_time = field_needed(L, ts, "end_time", K_TIME, 0, NULL, 0);
        pb->trade_warehouse_no = field_needed(L, ts, "warehouse_no", K_STRING, 0, NULL, 0);
    }
    static const char *const keys[] = { "tid", "orders", "", "end_time", "order_count",
                                         "goods_count", "warehouse_no", "discounts" };
    static const lua_CFunction fns[] = { l_order, l_add, l_take };
    for (int f = 0; f < 3; f++) {
        lua_pushvalue(L, 3);
        lua_pushvalue(L, 1);
        lua_pushvalue(L, 2);
        wdt_json_push_raw_mt(L);
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            lua_pushstring(L, keys[k]);
        lua_pushcclosure(L, fns[f], N_UPVALUES);
    }
    return 3;
}

void wdt_core_open_push_batch(lua_State *L)
{
    compat_register_mt(L, BATCH_MT, batch_meta, NULL);
    lua_pushcfunction(L, l_push_batch);
    lua_setfield(L, -2, "push_batch");
}
