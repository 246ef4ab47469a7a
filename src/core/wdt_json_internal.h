/* wdt_json_internal.h: what the three parts of the JSON codec share; not for the rest of
 * the core (the public contract is wdt_json.h).
 *
 *   wdt_json_encode.c   Lua value -> JSON: tables, key sorting, strings, numbers
 *   wdt_json_path.c     the "args[1][2].sync_id: ..." paths of encoding errors (cold code)
 *   wdt_json_decode.c   JSON -> Lua value: scanning, strings, numbers
 *
 * Shared here: the byte classes and the 8-bytes-at-a-time scan both directions use on
 * strings, UTF-8 validation, and the encoder's path segments. Everything is `static
 * inline` except wdt_json_path_error.
 *
 * Design notes common to both directions
 * --------------------------------------
 * - Both directions run inside a protected call (lua_pcall of a C function), so a
 *   memory error raised by the Lua API never escapes and never leaks our own heap
 *   buffers: everything malloc'd belongs to a state struct in the caller's frame and
 *   is freed after the pcall returns. The pcall also restores the Lua stack.
 * - Depth: both directions are recursive with small frames (no arrays on the C stack in
 *   the recursive functions) and stop at WDT_JSON_MAX_DEPTH (1000) levels, i.e. well
 *   under 200 KiB of C stack: safe on 8 MiB thread stacks and nginx worker stacks.
 *   Lua stack use is a few slots per level (LuaJIT allows a C function 8000 slots).
 * - Strings: scanned 8 bytes at a time for bytes that need attention (control
 *   characters, '"', '\\', non-ASCII), see swar_special below.
 */
#ifndef WDT_JSON_INTERNAL_H
#define WDT_JSON_INTERNAL_H

#include "wdt_json.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Keep the leaves out of the recursive functions' frames (C stack per nesting level). */
#if defined(__GNUC__) || defined(__clang__)
#define compat_noinline __attribute__((noinline))
#else
#define compat_noinline
#endif

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Non-zero when one of the 8 bytes is < 0x20, '"', '\\' or >= 0x80. */
static inline uint64_t swar_special(uint64_t x)
{
    uint64_t q = x ^ (ONES * 0x22);
    uint64_t b = x ^ (ONES * 0x5C);
    return (((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | x) & HIGHS;
}

/* 1 for the bytes a JSON string cannot carry as they are (or that need UTF-8 checks). */
static const unsigned char special[256] = {
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
};

/* The first byte at or after p that needs a look (special[] above), or end: 8 bytes at a
 * time while none of them does. */
static inline const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end)
{
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        if (swar_special(x))
            break;
        p += 8;
    }
    while (p < end && !special[*p])
        p++;
    return p;
}

/* Length of the valid UTF-8 sequence (2..4 bytes) starting at p (*p >= 0x80), 0 if invalid
 * (overlong forms, surrogates, > U+10FFFF, truncated, bad continuation bytes). */
static inline int utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], c1;
    if (c < 0xC2)
        return 0;
    if (end - p < 2 || ((c1 = p[1]) & 0xC0) != 0x80)
        return 0;
    if (c < 0xE0)
        return 2;
    if (end - p < 3 || (p[2] & 0xC0) != 0x80)
        return 0;
    if (c < 0xF0) {
        if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F))
            return 0;
        return 3;
    }
    if (c > 0xF4 || end - p < 4 || (p[3] & 0xC0) != 0x80)
        return 0;
    if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F))
        return 0;
    return 4;
}

/* ---- encoding error paths (wdt_json_path.c) ------------------------------------------ */

typedef struct enc_seg {
    const char *key;      /* NULL: array index */
    size_t klen;
    long long idx;
    const void *tab;      /* the table at this depth (for cycle detection) */
} enc_seg;

/* Write "<root><path[1..depth]>: <msg>" into err (errlen >= 1), NUL-terminated, eliding
 * the middle of paths too long for errlen. */
void wdt_json_path_error(char *err, size_t errlen, const char *root,
                         const enc_seg *path, int depth, const char *msg);

#endif
