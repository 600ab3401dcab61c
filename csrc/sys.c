/* The few system facts the Lua layer needs and plain Lua lacks:
 * - a monotonic clock (poll deadlines and backoff must not jump when the wall clock is set) and a
 *   blocking sleep for the synchronous runtime (the scheduler and OpenResty use their own timers);
 * - stat(), so inputs are checked (exists, is a file, size limit) before any request is sent;
 * - create_new(), so a result's name is taken atomically: never a file that exists, never
 *   through a symlink (a check with stat() and a later open() would do both);
 * - write_new(), link() and fsync(), so ocr.store.dir writes an entry under a temporary name,
 *   flushed to disk before it is renamed (or linked, for set-if-absent) into place: a reader
 *   in another process sees the whole entry or the previous one, never half of it;
 * - isatty(), so the command-line tool draws a progress bar only on a terminal;
 * - list_dir(), lstat() and mkdir(), so the registry finds the provider modules on
 *   package.path and the command reads a folder of inputs (never through a symlink) and creates
 *   its output folder, without a shell. */
#define _GNU_SOURCE   /* O_NOFOLLOW, O_CLOEXEC */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <math.h>
#include <time.h>
#include "ocr.h"
#include "clock.h"

int ocr_core_monotime(lua_State *L) {
    lua_pushnumber(L, (lua_Number)ocr_monotime());
    return 1;
}

int ocr_core_sleep(lua_State *L) {
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && s <= 86400 && !isnan(s), 1, "seconds between 0 and 86400 expected");
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { /* resume after signals */ }
    return 0;
}

/* A path argument without a NUL byte (the C calls would stop there), or NULL after pushing
 * nil, message (and `extra` when not NULL). */
static const char *path_arg(lua_State *L, int *nret, const char *extra) {
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    if (strlen(path) == len) return path;
    lua_pushnil(L);
    lua_pushliteral(L, "path contains a NUL byte");
    *nret = 2;
    if (extra) { lua_pushstring(L, extra); *nret = 3; }
    return NULL;
}

/* nil, "path: reason" (and "exists" | "error" when `kind`) for the errno of a failed call. */
static int push_errno(lua_State *L, const char *path, int e, int kind) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(e));
    if (!kind) return 2;
    if (e == EEXIST) lua_pushliteral(L, "exists");
    else lua_pushliteral(L, "error");
    return 3;
}

/* {type = "file"|"directory"|"link"|"other", size = bytes, mtime = s} of stat() or lstat(). */
static int push_stat(lua_State *L, int follow) {
    int nret;
    const char *path = path_arg(L, &nret, NULL);
    struct stat st;
    if (!path) return nret;
    if ((follow ? stat(path, &st) : lstat(path, &st)) != 0) return push_errno(L, path, errno, 0);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory"
                      : S_ISLNK(st.st_mode) ? "link" : "other");
    lua_setfield(L, -2, "type");
    lua_pushnumber(L, (lua_Number)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (lua_Number)st.st_mtime);
    lua_setfield(L, -2, "mtime");
    return 1;
}

/* stat(path) -> {type = "file"|"directory"|"other", size = bytes, mtime = s} or nil, message */
int ocr_core_stat(lua_State *L) { return push_stat(L, 1); }

/* lstat(path) -> as stat(path), but about the entry itself: a symlink is {type = "link", ...},
 * never what it points to. */
int ocr_core_lstat(lua_State *L) { return push_stat(L, 0); }

/* create_new(path) -> true, or nil, message, "exists" | "error": creates an empty file that
 * did not exist (O_CREAT|O_EXCL: a name, dangling symlinks included, is taken once, by one
 * caller; O_NOFOLLOW: never through a symlink). */
int ocr_core_create_new(lua_State *L) {
    lua_settop(L, 1);
    lua_pushliteral(L, "");   /* write_new with nothing to write: the same flags, one place */
    return ocr_core_write_new(L);
}

/* write_new(path, data[, sync]) -> true, or nil, message, "exists" | "error": creates a file
 * that did not exist (as create_new: never through a symlink), writes all of `data` and, when
 * `sync` is true, fsync()s it before closing. A failed write removes the file again. */
int ocr_core_write_new(lua_State *L) {
    int nret, fd, e = 0;
    size_t len, off = 0;
    const char *path = path_arg(L, &nret, "error");
    const char *data;
    int sync;
    if (!path) return nret;
    data = luaL_checklstring(L, 2, &len);
    sync = lua_toboolean(L, 3);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return push_errno(L, path, errno, 1);
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            e = errno;
            break;
        }
        off += (size_t)n;
    }
    if (!e && sync && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e && errno != EINTR) e = errno;
    if (e) {
        unlink(path);
        return push_errno(L, path, e, 1);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* link(existing, new) -> true, or nil, message, "exists" | "error": a second name for a file,
 * taken only if free (the atomic set-if-absent of a file that is already complete). */
int ocr_core_link(lua_State *L) {
    int nret;
    size_t len;
    const char *from = path_arg(L, &nret, "error");
    const char *to;
    if (!from) return nret;
    to = luaL_checklstring(L, 2, &len);
    if (strlen(to) != len) {
        lua_pushnil(L);
        lua_pushliteral(L, "path contains a NUL byte");
        lua_pushliteral(L, "error");
        return 3;
    }
    if (link(from, to) != 0) return push_errno(L, to, errno, 1);
    lua_pushboolean(L, 1);
    return 1;
}

/* fsync(path) -> true, or nil, message: flushes a file or a directory (after a rename into it,
 * so that the new name survives a crash). */
int ocr_core_fsync(lua_State *L) {
    int nret, fd, e = 0;
    const char *path = path_arg(L, &nret, NULL);
    if (!path) return nret;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return push_errno(L, path, errno, 0);
    if (fsync(fd) != 0 && errno != EINVAL) e = errno;   /* (EINVAL: a file that cannot sync) */
    close(fd);
    if (e) return push_errno(L, path, e, 0);
    lua_pushboolean(L, 1);
    return 1;
}

/* mkdir(path) -> true, or nil, message, "exists" | "error": creates one directory (mode 0777
 * less the umask); its parent must exist. */
int ocr_core_mkdir(lua_State *L) {
    int nret;
    const char *path = path_arg(L, &nret, "error");
    if (!path) return nret;
    if (mkdir(path, 0777) != 0) return push_errno(L, path, errno, 1);
    lua_pushboolean(L, 1);
    return 1;
}

/* list_dir(path) -> { name, ... } (unsorted, without "." and ".."; at most 100000 names), or
 * nil, message. Names are returned as the file system has them: the caller validates them. */
#define OCR_LIST_DIR_MAX 100000
int ocr_core_list_dir(lua_State *L) {
    int nret, n = 0, err;
    const char *path = path_arg(L, &nret, NULL);
    DIR *d;
    struct dirent *e;
    if (!path) return nret;
    d = opendir(path);
    if (!d) return push_errno(L, path, errno, 0);
    lua_newtable(L);
    for (;;) {
        errno = 0;
        e = readdir(d);
        if (!e) break;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (n >= OCR_LIST_DIR_MAX) break;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, ++n);
    }
    err = errno;
    closedir(d);
    if (err != 0) {
        lua_pop(L, 1);
        return push_errno(L, path, err, 0);
    }
    return 1;
}

/* isatty(fd) -> boolean (fd 0, 1 or 2: stdin, stdout, stderr) */
int ocr_core_isatty(lua_State *L) {
    lua_Integer fd = luaL_checkinteger(L, 1);
    luaL_argcheck(L, fd >= 0 && fd <= 2, 1, "0, 1 or 2 expected");
    lua_pushboolean(L, isatty((int)fd));
    return 1;
}

/* cpu_count() -> the number of online processors (at least 1) */
int ocr_core_cpu_count(lua_State *L) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    lua_pushinteger(L, n > 0 ? n : 1);
    return 1;
}
