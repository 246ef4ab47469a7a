/* Growable byte buffer shared by the C core. No Lua here. */
#ifndef WDT_BUF_H
#define WDT_BUF_H

#include <stddef.h>

typedef struct wdt_buf {
    char  *data;   /* always NUL-terminated once anything was appended */
    size_t len;
    size_t cap;
} wdt_buf;

void wdt_buf_init(wdt_buf *b);
/* Make room for `extra` more bytes (plus the NUL). 0 on success, -1 when out of memory. */
int  wdt_buf_reserve(wdt_buf *b, size_t extra);
int  wdt_buf_append(wdt_buf *b, const void *p, size_t n);
int  wdt_buf_puts(wdt_buf *b, const char *s);
/* Single byte, inlined: the JSON encoder calls it for every punctuation mark. */
static inline int wdt_buf_putc(wdt_buf *b, char c)
{
    if (b->len + 2 > b->cap && wdt_buf_reserve(b, 1) != 0)
        return -1;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return 0;
}
void wdt_buf_reset(wdt_buf *b);            /* len = 0, keeps the memory for reuse */
/* Overwrite the contents with zeros before freeing: buffers may have held a secret. */
void wdt_buf_wipe(wdt_buf *b);
void wdt_buf_free(wdt_buf *b);

#endif
