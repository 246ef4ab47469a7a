/* wdt_json_path.c: the place part of the encoder's error messages,
 * "args[1][2].sync_id: cannot encode a function": rendering a key readably (".sync_id" for
 * an identifier, ["a b"] with escapes otherwise, long keys cut at 40 bytes) and eliding the
 * middle of a path too long for the caller's error buffer. Cold code, apart from the hot
 * encoder (wdt_json_encode.c, already over 500 lines). No Lua API calls here.
 */
#include "wdt_json_internal.h"

#include <stdio.h>
#include <string.h>

/* One path component, e.g. "[3]", ".sync_id", "[\"a b\"]"; o needs 256 bytes. */
static size_t seg_render(const enc_seg *s, char *o)
{
    if (s->key == NULL)
        return (size_t)snprintf(o, 32, "[%lld]", s->idx);
    const unsigned char *k = (const unsigned char *)s->key;
    size_t n = s->klen, j = 0, i;
    int ident = n > 0 && n <= 64 && !(k[0] >= '0' && k[0] <= '9');
    for (i = 0; ident && i < n; i++) {
        unsigned c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            ident = 0;
    }
    if (ident) {
        o[0] = '.';
        memcpy(o + 1, k, n);
        return n + 1;
    }
    o[j++] = '[';
    o[j++] = '"';
    for (i = 0; i < n && i < 40;) {
        unsigned c = k[i];
        if (c == '"' || c == '\\') {
            o[j++] = '\\';
            o[j++] = (char)c;
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            j += (size_t)snprintf(o + j, 8, "\\x%02x", c);
            i++;
        } else if (c < 0x80) {
            o[j++] = (char)c;
            i++;
        } else {
            int m = utf8_seq(k + i, k + n);
            if (m) {
                memcpy(o + j, k + i, (size_t)m);
                j += (size_t)m;
                i += (size_t)m;
            } else {
                j += (size_t)snprintf(o + j, 8, "\\x%02x", c);
                i++;
            }
        }
    }
    if (i < n) {
        memcpy(o + j, "...", 3);
        j += 3;
    }
    o[j++] = '"';
    o[j++] = ']';
    return j;
}

void wdt_json_path_error(char *err, size_t errlen, const char *root, const enc_seg *path,
                         int depth, const char *msg)
{
    char seg[256];
    char *o = err;
    size_t cap = errlen, w = 0;
#define ERR_PUT(p, n) do { size_t n_ = (n); if (w + n_ >= cap) n_ = cap - 1 - w; \
                           memcpy(o + w, (p), n_); w += n_; } while (0)
    ERR_PUT(root, strlen(root));
    size_t total = 0;
    for (int d = 1; d <= depth; d++)
        total += seg_render(&path[d], seg);
    size_t budget = cap > strlen(msg) + w + 3 ? cap - strlen(msg) - w - 3 : 0;
    if (total <= budget) {
        for (int d = 1; d <= depth; d++)
            ERR_PUT(seg, seg_render(&path[d], seg));
    } else {
        size_t half = budget > 3 ? (budget - 3) / 2 : 0, used = 0;
        int d = 1, tail_from = depth + 1;
        for (; d <= depth; d++) {
            size_t n = seg_render(&path[d], seg);
            if (used + n > half)
                break;
            ERR_PUT(seg, n);
            used += n;
        }
        used = 0;
        while (tail_from - 1 > d) {
            size_t n = seg_render(&path[tail_from - 1], seg);
            if (used + n > half)
                break;
            used += n;
            tail_from--;
        }
        ERR_PUT("...", 3);
        for (int t = tail_from; t <= depth; t++)
            ERR_PUT(seg, seg_render(&path[t], seg));
    }
    ERR_PUT(": ", 2);
    ERR_PUT(msg, strlen(msg));
#undef ERR_PUT
    o[w] = '\0';
}
