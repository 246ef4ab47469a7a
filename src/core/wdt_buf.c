#include "wdt_buf.h"

#include <stdlib.h>
#include <string.h>

void wdt_buf_init(wdt_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int wdt_buf_reserve(wdt_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need < b->len)                      /* overflow */
        return -1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > ((size_t)-1) / 2)
            return -1;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int wdt_buf_append(wdt_buf *b, const void *p, size_t n)
{
    if (wdt_buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int wdt_buf_puts(wdt_buf *b, const char *s)
{
    return wdt_buf_append(b, s, strlen(s));
}

void wdt_buf_reset(wdt_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void wdt_buf_wipe(wdt_buf *b)
{
    if (b->data) {
        /* volatile so the compiler cannot drop the stores before free() */
        volatile char *p = b->data;
        for (size_t i = 0; i < b->cap; i++)
            p[i] = 0;
    }
    b->len = 0;
}

void wdt_buf_free(wdt_buf *b)
{
    free(b->data);
    wdt_buf_init(b);
}
