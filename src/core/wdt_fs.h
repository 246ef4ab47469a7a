/* wdt_fs: the two file mechanics that durable state needs (no Lua).
 *
 * wdt_fs_write_atomic: replace `path` with `len` bytes so that a reader, or the next run
 *   after a crash or power loss, sees either the old content or the new, never a mix: write
 *   a temporary file beside it (mode 0600), fsync it, rename it over `path`, fsync the
 *   folder. 0 on success; -1 with a message in err (the temporary file is removed).
 *
 * wdt_fs_write_new_or_atomic: the same; with `exclusive`, the new file is linked in place
 *   only when `path` does not exist yet (returns 1 when it does, nothing written).
 *
 * wdt_fs_lock: take an exclusive flock(2) on `path` (created 0600 when absent) without
 *   waiting. The kernel drops the lock when its holder exits, however it dies, so a lock
 *   whose holder died is free again. On success returns 0, sets *fd and writes this
 *   process's pid into the file (for messages). Returns 1 when another process holds it,
 *   with that holder's pid (as written by it, or "" when unknown) in holder; -1 with a
 *   message in err on other failures.
 * wdt_fs_unlock: release and close (idempotent for fd < 0).
 *
 * wdt_fs_private_dir: make sure `path` is a folder only this user can enter: created 0700
 *   when absent; an existing one must be a real folder (not a symlink), owned by the
 *   effective user, with no group or other bits (a shared /tmp must not let another user
 *   plant or read our lock files). 0, or -1 with a message in err.
 * wdt_fs_stat: mode bits, owner and kind of `path` (following symlinks; *kind 0 a regular
 *   file, 1 another thing that is no folder, 2 a folder). 0 or -1 (errno).
 * wdt_fs_sync_fd: fsync `fd` when it is a regular file (0; -1 and errno when that failed);
 *   1 when it is something else (*kind names it: "a pipe", "a terminal", ...).
 */
#ifndef WDT_FS_H
#define WDT_FS_H

#include <stddef.h>

int  wdt_fs_write_atomic(const char *path, const char *data, size_t len, char *err, size_t errlen);
int  wdt_fs_lock(const char *path, int *fd, char *holder, size_t holderlen, char *err, size_t errlen);
void wdt_fs_unlock(int fd);
int  wdt_fs_private_dir(const char *path, char *err, size_t errlen);
int  wdt_fs_write_new_or_atomic(const char *path, const char *data, size_t len, int exclusive,
                                char *err, size_t errlen);
int  wdt_fs_stat(const char *path, unsigned *mode, long *uid, int *kind);
int  wdt_fs_sync_fd(int fd, const char **kind);

#endif
