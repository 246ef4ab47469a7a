/* wdt_fs: atomic durable replace and run locks on local files. Contract in wdt_fs.h. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE   /* flock */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wdt_fs.h"

static int fail(char *err, size_t errlen, const char *what, const char *path)
{
    snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
    return -1;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* fsync the folder holding `path`, so that the rename itself survives a power loss. */
static int sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    int fd, rc;
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int wdt_fs_write_atomic(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    return wdt_fs_write_new_or_atomic(path, data, len, 0, err, errlen);
}

int wdt_fs_write_new_or_atomic(const char *path, const char *data, size_t len, int exclusive,
                               char *err, size_t errlen)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    int fd;
    if (!tmp) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fail(err, errlen, "cannot create", tmp);
        free(tmp);
        return -1;
    }
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        fail(err, errlen, "cannot write", tmp);
        close(fd);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (close(fd) != 0) {
        fail(err, errlen, "cannot write", tmp);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (exclusive) {
        /* link(2) fails with EEXIST when path exists: of two first runs, one creates it */
        int rc = link(tmp, path), e = errno;
        unlink(tmp);
        if (rc != 0) {
            free(tmp);
            if (e == EEXIST)
                return 1;
            errno = e;
            return fail(err, errlen, "cannot create", path);
        }
    } else if (rename(tmp, path) != 0) {
        fail(err, errlen, "cannot replace", path);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    if (sync_parent(path) != 0)
        return fail(err, errlen, "cannot sync the folder of", path);
    return 0;
}

static void read_holder(int fd, char *holder, size_t holderlen)
{
    ssize_t n;
    if (holderlen == 0)
        return;
    n = pread(fd, holder, holderlen - 1, 0);
    if (n < 0)
        n = 0;
    holder[n] = '\0';
    holder[strcspn(holder, "\r\n")] = '\0';
}

int wdt_fs_lock(const char *path, int *fd_out, char *holder, size_t holderlen, char *err, size_t errlen)
{
    char pid[32];
    int n;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(err, errlen, "cannot open the lock file", path);
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno == EWOULDBLOCK) {
            read_holder(fd, holder, holderlen);
            close(fd);
            return 1;
        }
        fail(err, errlen, "cannot lock", path);
        close(fd);
        return -1;
    }
    n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        fail(err, errlen, "cannot write the lock file", path);
        close(fd);   /* closing drops the lock */
        return -1;
    }
    *fd_out = fd;
    return 0;
}

void wdt_fs_unlock(int fd)
{
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}

int wdt_fs_private_dir(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return fail(err, errlen, "cannot create the folder", path);
    if (lstat(path, &st) != 0)
        return fail(err, errlen, "cannot inspect the folder", path);
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a folder", path);
        return -1;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        snprintf(err, errlen, "%s must be owned by uid %ld and have mode 0700 (it has uid %ld, mode %03o)",
                 path, (long)geteuid(), (long)st.st_uid, (unsigned)(st.st_mode & 0777));
        return -1;
    }
    return 0;
}

int wdt_fs_stat(const char *path, unsigned *mode, long *uid, int *is_dir)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    *mode = (unsigned)(st.st_mode & 07777);
    *uid = (long)st.st_uid;
    *is_dir = S_ISDIR(st.st_mode) ? 2 : S_ISREG(st.st_mode) ? 0 : 1;
    return 0;
}

int wdt_fs_sync_fd(int fd, const char **kind)
{
    struct stat st;
    *kind = "?";
    if (fstat(fd, &st) != 0)
        return -1;
    if (!S_ISREG(st.st_mode)) {
        *kind = S_ISFIFO(st.st_mode) ? "a pipe" : S_ISSOCK(st.st_mode) ? "a socket"
              : isatty(fd) ? "a terminal" : S_ISCHR(st.st_mode) ? "a device" : "not a file";
        return 1;
    }
    *kind = "a file";
    return fsync(fd) == 0 ? 0 : -1;
}
