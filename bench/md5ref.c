/* The reference for the sign row of `make bench`: plain MD5 of a file's bytes through
 * OpenSSL's EVP interface, repeated for about SECONDS; prints "<hashes per second> <md5>".
 *
 *   cc -O2 -o md5ref bench/md5ref.c -lcrypto && ./md5ref body.json 1.0
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/evp.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: md5ref FILE SECONDS\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);
    double seconds = atof(argv[2]);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    long n = 0, batch = 1;
    double t0 = now(), t;
    do {                                /* EVP_Digest: init, update, final, as one call */
        for (long i = 0; i < batch; i++)
            if (EVP_Digest(buf, (size_t)size, md, &md_len, EVP_md5(), NULL) != 1)
                return 1;
        n += batch;
        batch *= 2;
        t = now() - t0;
    } while (t < seconds);
    printf("%.3f ", (double)n / t);
    for (unsigned i = 0; i < md_len; i++)
        printf("%02x", md[i]);
    printf("\n");
    free(buf);
    return 0;
}
