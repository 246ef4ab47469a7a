/* wdt_push_schema.h: a push field list compiled for C (core.push_checker makes one), and
 * the record writer that checks and writes a Lua table by it. Shared by the checker
 * (wdt_core_push.c) and the batch builder (wdt_core_push_batch.c); not a public interface.
 */
#ifndef WDT_PUSH_SCHEMA_H
#define WDT_PUSH_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "lua.h"
#include "wdt_buf.h"

#define WDT_PUSH_SCHEMA_MT "wdt.core.push_schema"
#define WDT_PUSH_MAX_FIELDS 64
#define WDT_PUSH_HASH_SLOTS 256     /* > 4 x the longest list (fields.trade: 50): few probes */
#define WDT_PUSH_KEY_BYTES 48       /* "name": of a name up to 40 bytes, copied whole */

enum { K_OTHER, K_STRING, K_INT, K_DECIMAL, K_BOOL, K_TIME };

typedef struct field_rule {
    char key[WDT_PUSH_KEY_BYTES];   /* the name as JSON and a colon; key_len 0: needs escapes */
    unsigned char kind, req, null_ok, has_values, key_len;
    size_t max;                 /* SIZE_MAX: no limit */
    uint64_t values[2];         /* bit v set: v allowed (0..127) */
} field_rule;

typedef struct push_schema {
    int n;
    const char **names;         /* the field names, anchored by the checker's names table */
    size_t *name_lens;
    uint64_t required;          /* bit i: field i is required (lists of up to 64) */
    int busy;                   /* the encoder's buffer is in use */
    wdt_buf buf;                /* the single-record encoder's buffer, reused */
    const void *slot_name[WDT_PUSH_HASH_SLOTS];  /* a field name's address, by its hash; NULL: none */
    unsigned char slot[WDT_PUSH_HASH_SLOTS];      /* that field's index */
    /* The same by the name's string object (lua_topointer: Lua 5.4 and LuaJIT give it for
     * strings, 5.1-5.3 do not): a key found without reading it as a string. */
    int by_object;
    const void *slot_object[WDT_PUSH_HASH_SLOTS];
    unsigned char slot_by_object[WDT_PUSH_HASH_SLOTS];
    field_rule f[];
} push_schema;

/* A value of the record the writer keeps for its caller (the derived counts of an order
 * need a line's oid and num, a trade's counts). */
typedef struct push_value {
    int type;                   /* LUA_TNIL when the record has no such key */
    int is_int;                 /* a Lua 5.3+ integer: i holds it */
    long long i;                /* also a boolean's value (0 or 1) */
    double d;                   /* the number's value */
    const char *s;              /* a string's bytes, valid while the record is on the stack */
    size_t n;
} push_value;

/* One record being written: where, what was seen, and what to keep. */
typedef struct push_rec {
    wdt_buf *out;
    uint64_t seen;              /* fields present with a value that passed */
    uint64_t present;           /* fields present at all (null counts) */
    int first;                  /* nothing written after '{' yet */
    const signed char *keep;    /* keep[field index]: index into kept, or -1 (NULL: none) */
    push_value *kept;
} push_rec;

/* Writes the pair key (at -2) = value (on top) into r, checking the value when fi >= 0.
 * 0, or -1 when the record needs the Lua side (a check fails, a value is not a plain
 * scalar, out of memory). Calls no Lua code and raises no error. */
int wdt_push_put_field(lua_State *L, const push_schema *sc, int fi, push_rec *r);

/* '{' and every pair of the table at `rec` (an absolute index) but the key `omit` (NULL:
 * none), into r->out (the closing '}' is the caller's). 0 or -1 as above. */
int wdt_push_put_fields(lua_State *L, const push_schema *sc, int rec, const char *omit,
                        size_t omit_len, push_rec *r);

/* Field index of `name` in the schema, or -1. */
int wdt_push_field_named(const push_schema *sc, const char *name);

#endif
