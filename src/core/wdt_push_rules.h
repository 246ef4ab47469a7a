/* wdt_push_rules.h: the byte-level rules of the push's field checks (no Lua here; the
 * checker that applies them to Lua tables is wdt_core_push.c). */
#ifndef WDT_PUSH_RULES_H
#define WDT_PUSH_RULES_H

#include <stddef.h>

/* 1 when s is exactly "YYYY-MM-DD HH:MM:SS" in form (digits where the digits go; the
 * values are not range-checked, as the pattern the Lua side states is not). */
static inline int wdt_is_time19(const char *s, size_t n)
{
    static const char form[] = "0000-00-00 00:00:00";
    if (n != 19)
        return 0;
    for (size_t i = 0; i < 19; i++) {
        unsigned char c = (unsigned char)s[i];
        if (form[i] == '0' ? (c < '0' || c > '9') : c != (unsigned char)form[i])
            return 0;
    }
    return 1;
}

/* Characters of a UTF-8 string as the Lua side counts them: the bytes that are not
 * continuation bytes (0x80..0xBF). */
static inline size_t wdt_utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

#endif
