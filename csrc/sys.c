/* The few system facts the Lua layer needs and plain Lua lacks:
 * - a monotonic clock (poll deadlines and backoff must not jump when the wall clock is set) and a
 *   blocking sleep for the synchronous runtime (the scheduler and OpenResty use their own timers);
 * - stat(), so inputs are checked (exists, is a file, size limit) before any request is sent;
 * - create_new(), so a result's name is taken atomically: never a file that exists, never
 *   through a symlink (a check with stat() and a later open() would do both);
 * - isatty(), so the command-line tool draws a progress bar only on a terminal;
 * - list_dir(), so the provider registry finds the provider modules (ocr/providers/NAME.lua) on package.path
 *   (plain Lua can list a directory only through a shell). */
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

static int l_monotime(lua_State *L) {
    lua_pushnumber(L, (lua_Number)ocr_monotime());
    return 1;
}

static int l_sleep(lua_State *L) {
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && s <= 86400 && !isnan(s), 1, "seconds between 0 and 86400 expected");
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { /* resume after signals */ }
    return 0;
}

/* stat(path) -> {type = "file"|"directory"|"other", size = bytes, mtime = s} or nil, message */
static int l_stat(lua_State *L) {
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    struct stat st;
    if (strlen(path) != len) {
        lua_pushnil(L);
        lua_pushliteral(L, "path contains a NUL byte");
        return 2;
    }
    if (stat(path, &st) != 0) {
        int e = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(e));
        return 2;
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other");
    lua_setfield(L, -2, "type");
    lua_pushnumber(L, (lua_Number)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (lua_Number)st.st_mtime);
    lua_setfield(L, -2, "mtime");
    return 1;
}

/* create_new(path) -> true, or nil, message, "exists" | "error": creates an empty file that
 * did not exist (O_CREAT|O_EXCL: a name, dangling symlinks included, is taken once, by one
 * caller; O_NOFOLLOW: never through a symlink). */
static int l_create_new(lua_State *L) {
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    int fd, e;
    if (strlen(path) != len) {
        lua_pushnil(L);
        lua_pushliteral(L, "path contains a NUL byte");
        lua_pushliteral(L, "error");
        return 3;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) {
        close(fd);
        lua_pushboolean(L, 1);
        return 1;
    }
    e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(e));
    if (e == EEXIST) lua_pushliteral(L, "exists");
    else lua_pushliteral(L, "error");
    return 3;
}

/* isatty(fd) -> boolean (fd 0, 1 or 2: stdin, stdout, stderr) */
static int l_isatty(lua_State *L) {
    lua_Integer fd = luaL_checkinteger(L, 1);
    luaL_argcheck(L, fd >= 0 && fd <= 2, 1, "0, 1 or 2 expected");
    lua_pushboolean(L, isatty((int)fd));
    return 1;
}

/* cpu_count() -> the number of online processors (at least 1) */
static int l_cpu_count(lua_State *L) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    lua_pushinteger(L, n > 0 ? n : 1);
    return 1;
}

/* list_dir(path) -> { name, ... } (unsorted, without "." and ".."; at most 100000 names), or
 * nil, message. Names are returned as the file system has them: the caller validates them. */
#define OCR_LIST_DIR_MAX 100000
static int l_list_dir(lua_State *L) {
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    DIR *d;
    struct dirent *e;
    int n = 0, err;
    if (strlen(path) != len) {
        lua_pushnil(L);
        lua_pushliteral(L, "path contains a NUL byte");
        return 2;
    }
    d = opendir(path);
    if (!d) {
        err = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(err));
        return 2;
    }
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
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(err));
        return 2;
    }
    return 1;
}

const luaL_Reg ocr_sys_funcs[] = {
    {"monotime", l_monotime},
    {"sleep", l_sleep},
    {"stat", l_stat},
    {"create_new", l_create_new},
    {"isatty", l_isatty},
    {"cpu_count", l_cpu_count},
    {"list_dir", l_list_dir},
    {NULL, NULL}
};
