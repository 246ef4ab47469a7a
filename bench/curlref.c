/* Context for the network rows of `make bench`: libcurl alone, in C, sending the request
 * wdt prepared (the file named by $WDT_BENCH_REQUEST: path?query, newline, body) with the
 * options wdt sets (Content-Type, no Expect, every Accept-Encoding libcurl knows, answers
 * decompressed and kept in memory), for about SECONDS, with CONC transfers in flight on
 * one multi handle (CONC 1: curl_easy_perform on one kept-alive handle). No Lua, no
 * signing, no JSON: what any libcurl-based client pays per call. Prints calls per second.
 *
 *   cc -O2 -o curlref bench/curlref.c -lcurl && ./curlref http://127.0.0.1:8080 2 16
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

typedef struct { char *p; size_t n, cap; } sink;

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    sink *s = ud;
    size_t n = size * nmemb;
    if (s->n + n > s->cap) {
        size_t cap = (s->n + n) * 2;
        char *q = realloc(s->p, cap);
        if (!q)
            return 0;
        s->p = q;
        s->cap = cap;
    }
    memcpy(s->p + s->n, p, n);
    s->n += n;
    return n;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: curlref BASE_URL SECONDS CONC\n");
        return 2;
    }
    const char *file = getenv("WDT_BENCH_REQUEST");
    FILE *f = fopen(file ? file : "request.txt", "rb");
    if (!f) {
        perror("request file");
        return 1;
    }
    static char path[8192], body[65536];
    if (!fgets(path, sizeof path, f))
        return 1;
    path[strcspn(path, "\n")] = '\0';
    size_t body_len = fread(body, 1, sizeof body, f);
    fclose(f);
    char url[9000];
    snprintf(url, sizeof url, "%s%s", argv[1], path);
    double seconds = atof(argv[2]);
    int conc = atoi(argv[3]);
    if (conc < 1 || conc > 256)
        return 2;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    CURL *e[256];
    sink s[256];
    memset(s, 0, sizeof s);
    for (int i = 0; i < conc; i++) {
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e[i], CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(e[i], CURLOPT_USERAGENT, "wdt-lua/0.1");
        curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e[i], CURLOPT_WRITEDATA, &s[i]);
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_POSTFIELDSIZE, (long)body_len);
        curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, body);
    }
    long done = 0;
    double t0 = now(), t;
    if (conc == 1) {
        do {
            s[0].n = 0;
            if (curl_easy_perform(e[0]) != CURLE_OK)
                return 1;
            done++;
            t = now() - t0;
        } while (t < seconds);
    } else {
        CURLM *m = curl_multi_init();
        for (int i = 0; i < conc; i++)
            curl_multi_add_handle(m, e[i]);
        int running = 1, stop = 0;
        do {
            curl_multi_perform(m, &running);
            CURLMsg *msg;
            int q;
            while ((msg = curl_multi_info_read(m, &q)) != NULL) {
                if (msg->msg != CURLMSG_DONE)
                    continue;
                if (msg->data.result != CURLE_OK)
                    return 1;
                CURL *x = msg->easy_handle;
                curl_multi_remove_handle(m, x);
                done++;
                if (!stop) {
                    for (int i = 0; i < conc; i++)
                        if (e[i] == x)
                            s[i].n = 0;
                    curl_multi_add_handle(m, x);
                    running++;
                }
            }
            t = now() - t0;
            if (t >= seconds)
                stop = 1;
            if (running)
                curl_multi_poll(m, NULL, 0, 1000, NULL);
        } while (running);
        t = now() - t0;
    }
    printf("%.1f\n", (double)done / t);
    return 0;
}
