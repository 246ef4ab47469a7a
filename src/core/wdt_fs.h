/* wdt_fs: the two file mechanics that durable state needs (no Lua).
 *
 * wdt_fs_write_atomic: replace `path` with `len` bytes so that a reader, or the next run
 *   after a crash or power loss, sees either the old content or the new, never a mix: write
 *   a temporary file beside it (mode 0600), fsync it, rename it over `path`, fsync the
 *   folder. 0 on success; -1 with a message in err (the temporary file is removed).
 *
 * wdt_fs_lock: take an exclusive flock(2) on `path` (created 0600 when absent) without
 *   waiting. The kernel drops the lock when its holder exits, however it dies, so a lock
 *   whose holder died is free again. On success returns 0, sets *fd and writes this
 *   process's pid into the file (for messages). Returns 1 when another process holds it,
 *   with that holder's pid (as written by it, or "" when unknown) in holder; -1 with a
 *   message in err on other failures.
 * wdt_fs_unlock: release and close (idempotent for fd < 0).
 */
#ifndef WDT_FS_H
#define WDT_FS_H

#include <stddef.h>

int  wdt_fs_write_atomic(const char *path, const char *data, size_t len, char *err, size_t errlen);
int  wdt_fs_lock(const char *path, int *fd, char *holder, size_t holderlen, char *err, size_t errlen);
void wdt_fs_unlock(int fd);

#endif
