/* ocr.tesseract: local OCR on libtesseract's C API. The Lua face of tesseract_pool.c: options are
 * checked and the language data located here, on the caller's thread; recognition happens on
 * the pool's workers; finished jobs become Lua tables only in poll()/wait().
 *
 *   tess.pool{languages=, datapath=, psm=, oem=, threads=, max_engines=, max_pixels=, max_pages=,
 *             max_bytes=, queue_size=, page_timeout=}     returns at once: no model is loaded yet
 *   pool:submit{path= | data=, languages=} -> id     pool:poll() -> { {id=, res=} | {id=, err=}, ... }
 *   pool:warm([languages][, timeout]) -> true | nil, err: every worker loads that engine (the
 *   pool's languages by default) before its next job; with a timeout, waits for them that long
 *   pool:wait(id[, timeout]) -> res | nil, err    pool:cancel(id)  pool:fd()  pool:pending()
 *   pool:progress(id) -> percent, pages_done, pages, "queued"|"running"|"finished" | nil
 *   pool:stats()  pool:usable()  pool:close()    tess.languages([datapath]) -> names, dir    tess.datapath() -> dir | nil
 *   tess._check_image(bytes[, max_pages]) -> TIFF pages, {{width=, height=}, ...} (0: another
 *   format) | nil, err: the byte checks a job runs before decoding (image_check.c), callable
 *   alone so that specs can fuzz them
 *
 * Wrong types and malformed calls raise; bad values, missing data and failed images return
 * nil, {kind=, message=} with the kinds of ocr.errors. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <leptonica/allheaders.h>
#include <tesseract/capi.h>
#include "image_check.h"
#include "tesseract_pool.h"

#define POOL_MT "ocr.tesseract.pool"
#define DIR_MT  "ocr.tesseract.dir"

#define DEFAULT_MAX_PIXELS  100000000.0        /* 100 Mpx: a 32-bit 100 Mpx page is 400 MB */
#define DEFAULT_MAX_PAGES   1000.0             /* of a multi-page TIFF; each page is recognised */
#define DEFAULT_MAX_BYTES   (256.0 * 1048576)
#define DEFAULT_QUEUE_SIZE  256.0
#define DEFAULT_MAX_ENGINES 2.0                /* per worker: ~20-60 MB each, see README */

OCR_EXPORT int luaopen_ocr_tesseract(lua_State *L);

typedef struct {
    tp_pool *pool;                       /* NULL once closed */
    pid_t owner;                         /* the process whose threads these are */
    char languages[TP_MAX_LANGS_LEN + 1];   /* the default */
    char datapath[TP_MAX_PATH];
    int threads, psm;
} lpool;

static const char *const kind_names[] = {
    "ok", "invalid_input", "unsupported", "too_large", "task_failed", "cancelled",
    "rate_limited", "timeout", "not_found", "server"
};

static void push_error_table(lua_State *L, tp_kind kind, const char *msg) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, kind_names[kind]);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
}

static int fail(lua_State *L, tp_kind kind, const char *msg) {
    lua_pushnil(L);
    push_error_table(L, kind, msg);
    return 2;
}

/* ---- language data ------------------------------------------------------------------------ */

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Where libtesseract looks when given no datapath: TESSDATA_PREFIX when it names an existing
 * directory (5.x ignores it otherwise), else the directory compiled into the library. The C API
 * reveals that one only after a model has loaded, so the places distributions use are probed,
 * after OCR_TESSDATA_DIR when the build sets it. "" when none exists. */
static void default_datapath(char *out, size_t n) {
    static const char *const dirs[] = {
#ifdef OCR_TESSDATA_DIR
        OCR_TESSDATA_DIR,
#endif
        "/usr/share/tesseract-ocr/5/tessdata",    /* Debian, Ubuntu */
        "/usr/share/tesseract-ocr/4.00/tessdata", /* Debian, Ubuntu with tesseract 4 data */
        "/usr/share/tessdata",                    /* Fedora, Arch, Alpine */
        "/usr/local/share/tessdata",              /* source builds, FreeBSD, Homebrew (Intel) */
        "/opt/homebrew/share/tessdata",           /* Homebrew (Apple silicon) */
        NULL
    };
    const char *env = getenv("TESSDATA_PREFIX");
    out[0] = '\0';
    if (env && env[0] && strlen(env) < n && is_dir(env)) {
        strcpy(out, env);
        return;
    }
    for (int i = 0; dirs[i]; i++) {
        if (is_dir(dirs[i])) {
            snprintf(out, n, "%s", dirs[i]);
            return;
        }
    }
}

/* Copies an explicit datapath (without trailing slashes); 0 if empty, too long or with a NUL. */
static int copy_datapath(const char *s, size_t len, char *out, size_t n) {
    if (len == 0 || len >= n || strlen(s) != len) return 0;
    memcpy(out, s, len + 1);
    while (len > 1 && out[len - 1] == '/') out[--len] = '\0';
    return 1;
}

#define BAD_DATAPATH "datapath must be a non-empty path without NUL bytes, under 4096 bytes"

/* The datapath argument at idx (string or nil) into out; raises on a wrong type or value. */
static void resolve_datapath(lua_State *L, int idx, char *out, size_t n) {
    if (lua_isnoneornil(L, idx)) {
        default_datapath(out, n);
        return;
    }
    size_t len;
    const char *s = luaL_checklstring(L, idx, &len);
    luaL_argcheck(L, copy_datapath(s, len, out, n), idx, BAD_DATAPATH);
}

/* "eng", "chi_sim+eng", "script/Latin": names of [A-Za-z0-9_] with inner '/', joined by '+'.
 * Checked because each name becomes a path under the datapath. */
static int valid_languages(const char *s, size_t len) {
    if (len == 0 || len > TP_MAX_LANGS_LEN || strlen(s) != len) return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = s[i];
        if (c == '+' || c == '\0') {
            if (i == start || s[i - 1] == '/') return 0;
            start = i + 1;
        } else if (c == '/') {
            if (i == start || s[i - 1] == '/') return 0;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                     || c == '_')) {
            return 0;
        }
    }
    return 1;
}

/* Debian's package for a language code: tesseract-ocr-chi-sim for chi_sim. */
static void package_hint(const char *lang, size_t len, char *out, size_t n) {
    if (memchr(lang, '/', len)) {
        snprintf(out, n, "the tesseract-ocr-script-* package that provides it");
        return;
    }
    char pkg[TP_MAX_LANGS_LEN + 1];
    size_t i;
    for (i = 0; i < len && i < sizeof pkg - 1; i++) {
        char c = lang[i];
        pkg[i] = c == '_' ? '-' : (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    pkg[i] = '\0';
    snprintf(out, n, "tesseract-ocr-%s", pkg);
}

/* One model file must be readable in datapath; -1 with msg naming the package otherwise. */
static int check_model(const char *datapath, const char *lang, size_t len, char *msg, size_t n) {
    char path[TP_MAX_PATH + TP_MAX_LANGS_LEN + 32];
    char hint[TP_MAX_LANGS_LEN + 64];
    snprintf(path, sizeof path, "%s/%.*s.traineddata", datapath, (int)len, lang);
    if (datapath[0] && access(path, R_OK) == 0) return 0;
    package_hint(lang, len, hint, sizeof hint);
    if (datapath[0])
        snprintf(msg, n, "language data '%.*s' not found in %s; install %s", (int)len, lang,
                 datapath, hint);
    else
        snprintf(msg, n, "language data '%.*s' not found: no tessdata directory (set datapath or "
                 "TESSDATA_PREFIX); install %s", (int)len, lang, hint);
    return -1;
}

/* Every language of "a+b" (validated) must have its model; the OSD modes need osd too. Checked
 * here so that the error names the file and the package, not tesseract's stderr chatter. */
static int check_language_files(const char *datapath, const char *langs, int psm,
                                char *msg, size_t n) {
    for (const char *p = langs; *p; ) {
        size_t len = strcspn(p, "+");
        if (check_model(datapath, p, len, msg, n) != 0) return -1;
        p += len + (p[len] == '+');
    }
    if (psm == 0 || psm == 1 || psm == 12) return check_model(datapath, "osd", 3, msg, n);
    return 0;
}

static int l_check_image(lua_State *L) {
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    lua_Integer max_pages = luaL_optinteger(L, 2, (lua_Integer)DEFAULT_MAX_PAGES);
    luaL_argcheck(L, max_pages >= 1 && max_pages <= 1000000, 2,
                  "max_pages must be from 1 to 1000000");
    char msg[TP_MSG_LEN];
    int pages = 0;
    ic_status st = ic_check((const unsigned char *)data, len, (int)max_pages, &pages, msg,
                            sizeof msg);
    if (st != IC_OK) return fail(L, tp_kind_of_check(st), msg);
    if (pages == 0) {
        lua_pushinteger(L, 0);
        return 1;
    }
    /* A userdata holds the directories, so a Lua memory error while building the table frees them */
    ic_tiff_page *dirs = lua_newuserdata(L, (size_t)pages * sizeof *dirs);
    st = ic_tiff_pages((const unsigned char *)data, len, dirs, pages, msg, sizeof msg);
    if (st != IC_OK) return fail(L, tp_kind_of_check(st), msg);
    lua_pushinteger(L, pages);
    lua_createtable(L, pages, 0);
    for (int i = 0; i < pages; i++) {
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, (lua_Integer)dirs[i].width);
        lua_setfield(L, -2, "width");
        lua_pushinteger(L, (lua_Integer)dirs[i].height);
        lua_setfield(L, -2, "height");
        lua_rawseti(L, -2, i + 1);
    }
    return 2;
}

static int l_datapath(lua_State *L) {
    char dir[TP_MAX_PATH];
    default_datapath(dir, sizeof dir);
    if (dir[0]) lua_pushstring(L, dir); else lua_pushnil(L);
    return 1;
}

/* A DIR* owned by a userdata, so that a Lua error while listing cannot leak it. */
typedef struct { DIR *d; } dir_guard;

static int dir_guard_gc(lua_State *L) {
    dir_guard *g = luaL_checkudata(L, 1, DIR_MT);
    if (g->d) closedir(g->d);
    g->d = NULL;
    return 0;
}

/* Appends prefix..name (without .traineddata) for every model in dir to the table at t;
 * descends one level (tessdata/script/Latin.traineddata is "script/Latin"). */
static void list_models(lua_State *L, int t, const char *dir, const char *prefix, int depth) {
    static const char suffix[] = ".traineddata";
    const size_t slen = sizeof suffix - 1;
    dir_guard *g = lua_newuserdata(L, sizeof *g);
    g->d = NULL;
    luaL_setmetatable(L, DIR_MT);
    g->d = opendir(dir);
    if (g->d == NULL) { lua_pop(L, 1); return; }
    struct dirent *e;
    char sub[TP_MAX_PATH + 256];
    while ((e = readdir(g->d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.') continue;
        if (len > slen && strcmp(e->d_name + len - slen, suffix) == 0) {
            lua_pushstring(L, prefix);
            lua_pushlstring(L, e->d_name, len - slen);
            lua_concat(L, 2);
            lua_rawseti(L, t, (int)lua_rawlen(L, t) + 1);
        } else if (depth == 0 && len < 256) {
            snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
            if (is_dir(sub)) {
                char pre[260];
                snprintf(pre, sizeof pre, "%s/", e->d_name);
                list_models(L, t, sub, pre, 1);
            }
        }
    }
    closedir(g->d);
    g->d = NULL;
    lua_pop(L, 1);
}

/* Insertion sort of the string array at t (a few dozen names). */
static void sort_strings(lua_State *L, int t) {
    int n = (int)lua_rawlen(L, t);
    for (int i = 2; i <= n; i++) {
        lua_rawgeti(L, t, i);
        int j = i - 1;
        for (; j >= 1; j--) {
            lua_rawgeti(L, t, j);
            if (strcmp(lua_tostring(L, -1), lua_tostring(L, -2)) <= 0) { lua_pop(L, 1); break; }
            lua_rawseti(L, t, j + 1);
        }
        lua_rawseti(L, t, j + 1);
    }
}

/* languages([datapath]) -> sorted names, datapath | nil, err */
static int l_languages(lua_State *L) {
    char dir[TP_MAX_PATH];
    resolve_datapath(L, 1, dir, sizeof dir);
    if (dir[0] == '\0')
        return fail(L, TP_NOT_FOUND, "no tessdata directory found: set TESSDATA_PREFIX or pass a "
                                     "datapath; install tesseract-ocr-eng");
    if (!is_dir(dir)) {
        char msg[TP_MAX_PATH + 64];
        snprintf(msg, sizeof msg, "tessdata directory %s does not exist", dir);
        return fail(L, TP_NOT_FOUND, msg);
    }
    lua_newtable(L);
    int t = lua_gettop(L);
    list_models(L, t, dir, "", 0);
    sort_strings(L, t);
    lua_pushstring(L, dir);
    return 2;
}

/* ---- pool options ------------------------------------------------------------------------- */

static const char *const pool_keys[] = {
    "languages", "datapath", "psm", "oem", "threads", "max_engines", "max_pixels", "max_pages",
    "max_bytes", "queue_size", "page_timeout", NULL
};

static void check_keys(lua_State *L, int t, const char *const *keys, const char *what) {
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        int ok = 0;
        if (lua_type(L, -1) == LUA_TSTRING)
            for (int i = 0; keys[i] && !ok; i++) ok = strcmp(lua_tostring(L, -1), keys[i]) == 0;
        if (!ok) {
            const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                              : luaL_typename(L, -1);
            luaL_error(L, "%s: unknown option '%s'", what, name);
        }
    }
}

/* opts[key] as a whole number in lo..hi, def when nil. A non-number raises; a value out of range
 * returns 0 with msg set (bad data, reported as invalid_input). */
static int opt_number(lua_State *L, int t, const char *key, double lo, double hi, double def,
                      double *out, char *msg, size_t n) {
    lua_getfield(L, t, key);
    if (lua_isnil(L, -1)) {
        *out = def;
    } else {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "tesseract.pool: option '%s' must be a number (got %s)", key,
                       luaL_typename(L, -1));
        double v = (double)lua_tonumber(L, -1);
        if (!(v >= lo && v <= hi) || floor(v) != v) {
            snprintf(msg, n, "option %s must be a whole number from %.0f to %.0f", key, lo, hi);
            lua_pop(L, 1);
            return 0;
        }
        *out = v;
    }
    lua_pop(L, 1);
    return 1;
}

/* Fills o from the options table at t; 0 with msg for a bad value. Raises on wrong types. */
static int read_pool_options(lua_State *L, int t, tp_options *o, char *msg, size_t n) {
    double psm, oem, threads, max_engines, max_pixels, max_pages, max_bytes, queue;
    memset(o, 0, sizeof *o);
    if (t) check_keys(L, t, pool_keys, "tesseract.pool");
    const char *langs = "eng";
    size_t len = 3;
    if (t) {
        lua_getfield(L, t, "languages");
        if (!lua_isnil(L, -1)) {
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "tesseract.pool: option 'languages' must be a string (got %s)",
                           luaL_typename(L, -1));
            langs = lua_tolstring(L, -1, &len);
        }
    }
    if (!valid_languages(langs, len)) {
        snprintf(msg, n, "languages must be tesseract language codes joined by '+', like "
                 "'eng' or 'chi_sim+eng' (got '%.64s')", langs);
        return 0;
    }
    memcpy(o->languages, langs, len + 1);
    if (t) {
        lua_pop(L, 1);
        lua_getfield(L, t, "datapath");
    } else {
        lua_pushnil(L);
    }
    if (lua_isnil(L, -1)) {
        default_datapath(o->datapath, sizeof o->datapath);
    } else {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "tesseract.pool: option 'datapath' must be a string (got %s)",
                       luaL_typename(L, -1));
        const char *dp = lua_tolstring(L, -1, &len);
        if (!copy_datapath(dp, len, o->datapath, sizeof o->datapath)) {
            snprintf(msg, n, BAD_DATAPATH);
            return 0;
        }
    }
    lua_pop(L, 1);
    if (t == 0) {
        lua_newtable(L);   /* so that opt_number reads nils */
        t = lua_gettop(L);
    }
    /* psm defaults to 3 (automatic layout), as for the tesseract command; the API's own default
     * is a single uniform block, which merges columns. */
    if (!opt_number(L, t, "psm", 0, 13, 3, &psm, msg, n)
        || !opt_number(L, t, "oem", 0, 3, 3, &oem, msg, n)
        || !opt_number(L, t, "threads", 1, TP_MAX_THREADS, 1, &threads, msg, n)
        || !opt_number(L, t, "max_engines", 1, TP_MAX_ENGINES, DEFAULT_MAX_ENGINES, &max_engines,
                       msg, n)
        || !opt_number(L, t, "max_pixels", 1, 4294967296.0, DEFAULT_MAX_PIXELS, &max_pixels, msg, n)
        || !opt_number(L, t, "max_pages", 1, 1000000, DEFAULT_MAX_PAGES, &max_pages, msg, n)
        || !opt_number(L, t, "max_bytes", 1, 4294967296.0, DEFAULT_MAX_BYTES, &max_bytes, msg, n)
        || !opt_number(L, t, "queue_size", 1, 65536, DEFAULT_QUEUE_SIZE, &queue, msg, n))
        return 0;
    o->psm = (int)psm;
    o->oem = (int)oem;
    o->threads = (int)threads;
    o->max_engines = (int)max_engines;
    o->max_pixels = (uint64_t)max_pixels;
    o->max_pages = (int)max_pages;
    o->max_bytes = max_bytes > (double)SIZE_MAX ? SIZE_MAX : (size_t)max_bytes;
    o->max_pending = (size_t)queue;
    /* seconds, not a whole number: a frame-bound caller may want a fraction */
    lua_getfield(L, t, "page_timeout");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "tesseract.pool: option 'page_timeout' must be a number (got %s)",
                       luaL_typename(L, -1));
        double v = (double)lua_tonumber(L, -1);
        if (!(v > 0 && v <= 1e6)) {
            snprintf(msg, n, "option page_timeout must be seconds above 0, up to 1e6");
            lua_pop(L, 1);
            return 0;
        }
        o->page_timeout = v;
    }
    lua_pop(L, 1);
    return 1;
}

/* tess.pool(opts) -> pool | nil, err. Returns at once: the workers load a model when a job or
 * warm() first needs it. The default languages' files are checked here (a stat, not a load). */
static int l_pool(lua_State *L) {
    tp_options o;
    char msg[TP_MSG_LEN];
    int t = 0;
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        t = 1;
    }
    if (!read_pool_options(L, t, &o, msg, sizeof msg)) return fail(L, TP_INVALID_INPUT, msg);
    if (check_language_files(o.datapath, o.languages, o.psm, msg, sizeof msg) != 0)
        return fail(L, TP_INVALID_INPUT, msg);
    /* The userdata exists (with __gc) before the threads, so nothing can leak them. */
    lpool *lp = lua_newuserdata(L, sizeof *lp);
    lp->pool = NULL;
    lp->owner = getpid();
    memcpy(lp->languages, o.languages, sizeof lp->languages);
    memcpy(lp->datapath, o.datapath, sizeof lp->datapath);
    lp->threads = o.threads;
    lp->psm = o.psm;
    luaL_setmetatable(L, POOL_MT);
    tp_kind kind = TP_OK;
    lp->pool = tp_pool_create(&o, &kind, msg, sizeof msg);
    if (lp->pool == NULL) return fail(L, kind, msg);
    return 1;
}

/* ---- pool methods ------------------------------------------------------------------------- */

/* After fork() the child has a copy of the pool but none of its worker threads: a job would
 * wait forever and joining the workers would hang. The copy is let go untouched (its memory
 * is the parent's, copied on write), so the pool is closed in the child. An OpenResty master
 * that recognised a page in init_by_lua hands such a copy to every nginx worker. */
static lpool *check_pool(lua_State *L) {
    lpool *lp = luaL_checkudata(L, 1, POOL_MT);
    if (lp->pool != NULL && lp->owner != getpid()) lp->pool = NULL;
    return lp;
}

static lpool *check_open(lua_State *L) {
    lpool *lp = check_pool(L);
    if (lp->pool == NULL)
        luaL_error(L, lp->owner == getpid() ? "tesseract pool is closed"
                      : "tesseract pool is closed: it was created in process %d, before a fork; "
                        "create it again in this process", (int)lp->owner);
    return lp;
}

static const char *const submit_keys[] = {
    "path", "data", "languages", "format", "output", "title", "pdf", "password", "dpi", "pages",
    "text_layer", NULL
};

static const char *const format_names[] = { "txt", "hocr", "alto", "tsv", "pdf", NULL };

/* An optional string field of the submit table: NULL when nil; raises on another type. */
static const char *opt_string(lua_State *L, int t, const char *key, size_t *len) {
    lua_getfield(L, t, key);
    const char *s = NULL;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "pool:submit: '%s' must be a string (got %s)", key, luaL_typename(L, -1));
        s = lua_tolstring(L, -1, len);
    }
    lua_pop(L, 1);   /* (the string stays referenced by the table) */
    return s;
}

/* The job options of the submit table at t into jo (strings point into the table, ranges into
 * `ranges`); 0 with msg for a bad value; raises on a wrong type. */
static int read_job_options(lua_State *L, int t, tp_job_options *jo, int *ranges, char *msg,
                            size_t n) {
    size_t len = 0;
    memset(jo, 0, sizeof *jo);
    jo->dpi = 300;
    const char *format = opt_string(L, t, "format", &len);
    if (format != NULL) {
        int i = 0;
        while (format_names[i] && strcmp(format_names[i], format) != 0) i++;
        if (format_names[i] == NULL || strlen(format) != len) {
            snprintf(msg, n, "format must be txt, hocr, alto, tsv or pdf (got '%.32s')", format);
            return 0;
        }
        jo->format = (tp_format)i;
    }
    jo->output = opt_string(L, t, "output", &len);
    if (jo->output && (len == 0 || strlen(jo->output) != len || len > TP_MAX_PATH - 8)) {
        snprintf(msg, n, "output must be a path without NUL bytes, under %d bytes", TP_MAX_PATH - 8);
        return 0;
    }
    if ((jo->format != TP_FORMAT_TXT) != (jo->output != NULL)) {
        snprintf(msg, n, "%s", jo->output ? "output is the path of a format's file: format must "
                 "be hocr, alto, tsv or pdf" : "format writes a file: output must be its path");
        return 0;
    }
    jo->title = opt_string(L, t, "title", &len);
    if (jo->title && strlen(jo->title) != len) jo->title = NULL;
    jo->password = opt_string(L, t, "password", &len);
    if (jo->password && (strlen(jo->password) != len || len > 1024)) {
        snprintf(msg, n, "password must be under 1024 bytes, without NUL bytes");
        return 0;
    }
    const char *layer = opt_string(L, t, "text_layer", &len);
    if (layer && strcmp(layer, "ocr") != 0 && strcmp(layer, "keep") != 0) {
        snprintf(msg, n, "text_layer must be \"ocr\" or \"keep\"");
        return 0;
    }
    jo->keep_text = layer && strcmp(layer, "keep") == 0;
    if (jo->keep_text && jo->format != TP_FORMAT_TXT) {
        snprintf(msg, n, "text_layer = \"keep\" goes with format = \"txt\" only: libtesseract's "
                 "renderers write what the engine recognised");
        return 0;
    }
    lua_getfield(L, t, "dpi");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "pool:submit: 'dpi' must be a number (got %s)", luaL_typename(L, -1));
        lua_Number d = lua_tonumber(L, -1);
        if (!(d >= 30 && d <= 1200) || floor(d) != d) {
            lua_pop(L, 1);
            snprintf(msg, n, "dpi must be a whole number from 30 to 1200");
            return 0;
        }
        jo->dpi = (int)d;
    }
    lua_pop(L, 1);
    lua_getfield(L, t, "pdf");
    if (!lua_isnil(L, -1)) jo->pdf = *(const tpdf_api **)luaL_checkudata(L, -1, TPDF_MT);
    lua_pop(L, 1);
    if (jo->pdf && jo->pdf->abi != TPDF_ABI) {
        snprintf(msg, n, "ocr.tesseract_pdf was built for another ocr.tesseract: rebuild both");
        return 0;
    }
    /* pages: {first, last, first, last, ...}, ascending and disjoint (ocr's provider parses
     * "1-3,6" into this) */
    lua_getfield(L, t, "pages");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TTABLE)
            luaL_error(L, "pool:submit: 'pages' must be a table (got %s)", luaL_typename(L, -1));
        size_t count = lua_rawlen(L, -1);
        if (count == 0 || count % 2 != 0 || count > 2 * TP_MAX_RANGES) {
            lua_pop(L, 1);
            snprintf(msg, n, "pages must hold 1 to %d ranges as first, last pairs", TP_MAX_RANGES);
            return 0;
        }
        for (size_t i = 0; i < count; i++) {
            lua_rawgeti(L, -1, (int)i + 1);
            lua_Number v = lua_tonumber(L, -1);
            int ok = lua_type(L, -1) == LUA_TNUMBER && v >= 1 && v <= 1000000 && floor(v) == v;
            lua_pop(L, 1);
            ranges[i] = ok ? (int)v : 0;
            /* ascending within a range, and after the range before */
            if (ok && i > 0) ok = i % 2 == 1 ? ranges[i] >= ranges[i - 1] : ranges[i] > ranges[i - 1];
            if (!ok) {
                lua_pop(L, 1);
                snprintf(msg, n, "pages must be ascending, disjoint ranges of page numbers from 1 "
                         "to 1000000");
                return 0;
            }
        }
        jo->ranges = ranges;
        jo->nranges = (int)(count / 2);
    }
    lua_pop(L, 1);
    return 1;
}

/* The languages at stack index idx (nil: the pool's default) into out, validated and their
 * files checked (a stat each: the model is loaded on a worker). 0 with msg for a bad value or
 * missing data; raises on a wrong type. */
static int job_languages(lua_State *L, int idx, const char *datapath, int psm,
                         const char *def, char *out, char *msg, size_t n) {
    if (lua_isnil(L, idx)) {
        memcpy(out, def, strlen(def) + 1);
        return 1;
    }
    if (lua_type(L, idx) != LUA_TSTRING)
        luaL_error(L, "tesseract: 'languages' must be a string (got %s)", luaL_typename(L, idx));
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (!valid_languages(s, len)) {
        snprintf(msg, n, "languages must be tesseract language codes joined by '+', like "
                 "'eng' or 'chi_sim+eng' (got '%.64s')", s);
        return 0;
    }
    if (check_language_files(datapath, s, psm, msg, n) != 0) return 0;
    memcpy(out, s, len + 1);
    return 1;
}

/* pool:submit{path = file | data = bytes, languages = "eng+chi_sim", format =, output =, title =,
 * pdf = renderer, password =, dpi =, pages = {first, last, ...}, text_layer = "ocr"|"keep"}
 * -> id | nil, err. Never waits for recognition nor for a model. */
static int l_submit(lua_State *L) {
    lpool *lp = check_open(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    check_keys(L, 2, submit_keys, "pool:submit");
    lua_getfield(L, 2, "path");
    lua_getfield(L, 2, "data");
    int has_path = !lua_isnil(L, -2), has_data = !lua_isnil(L, -1);
    luaL_argcheck(L, has_path != has_data, 2, "exactly one of 'path' or 'data' expected");
    size_t len = 0;
    const char *s = NULL;
    if (has_path) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "pool:submit: 'path' must be a string (got %s)", luaL_typename(L, -2));
        s = lua_tolstring(L, -2, &len);
        if (len == 0 || strlen(s) != len)
            return fail(L, TP_INVALID_INPUT, "image path is empty or contains a NUL byte");
    } else {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "pool:submit: 'data' must be a string (got %s)", luaL_typename(L, -1));
        s = lua_tolstring(L, -1, &len);
    }
    int64_t id = 0;
    char msg[TP_MSG_LEN], langs[TP_MAX_LANGS_LEN + 1];
    lua_getfield(L, 2, "languages");
    if (!job_languages(L, -1, lp->datapath, lp->psm, lp->languages, langs, msg, sizeof msg))
        return fail(L, TP_INVALID_INPUT, msg);
    tp_job_options jo;
    int *ranges = lua_newuserdata(L, 2 * TP_MAX_RANGES * sizeof *ranges);   /* (freed by the GC) */
    if (!read_job_options(L, 2, &jo, ranges, msg, sizeof msg)) return fail(L, TP_INVALID_INPUT, msg);
    tp_kind kind = tp_pool_submit(lp->pool, has_path ? s : NULL, has_path ? NULL : s, len, langs,
                                  &jo, &id, msg, sizeof msg);
    if (kind != TP_OK) return fail(L, kind, msg);
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

static void set_int(lua_State *L, const char *k, lua_Integer v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void push_box(lua_State *L, const tp_box *b) {
    lua_createtable(L, 0, 4);
    set_int(L, "x", b->x);
    set_int(L, "y", b->y);
    set_int(L, "w", b->w);
    set_int(L, "h", b->h);
}

static void push_text(lua_State *L, const tp_result *r, size_t off, size_t len) {
    if (len == 0 || r->strings.data == NULL) lua_pushliteral(L, "");
    else lua_pushlstring(L, r->strings.data + off, len);
}

static void push_words(lua_State *L, const tp_result *r, const tp_line *line) {
    const tp_word *words = (const tp_word *)(const void *)r->words.data;
    lua_createtable(L, (int)line->nwords, 0);
    for (size_t i = 0; i < line->nwords; i++) {
        const tp_word *w = &words[line->first_word + i];
        lua_createtable(L, 0, 4);
        set_int(L, "page", line->page);
        push_text(L, r, w->text_off, w->text_len);
        lua_setfield(L, -2, "text");
        lua_pushnumber(L, w->confidence);
        lua_setfield(L, -2, "confidence");
        push_box(L, &w->box);
        lua_setfield(L, -2, "box");
        lua_rawseti(L, -2, (int)i + 1);
    }
}

/* {text=, language=, pages={ {width=, height=, angle=}, ... }, lines={...}}: the pages' texts
 * joined by form feeds (as the tesseract command separates pages); a page's angle only where
 * orientation was detected. May raise (memory): the job stays owned by the pool until the
 * caller releases it. */
static void push_result(lua_State *L, const tp_job *job) {
    const tp_result *r = &job->res;
    size_t nlines = r->lines.len / sizeof(tp_line);
    size_t npages = r->pages.len / sizeof(tp_page);
    const tp_line *lines = (const tp_line *)(const void *)r->lines.data;
    const tp_page *pages = (const tp_page *)(const void *)r->pages.data;
    luaL_checkstack(L, 8, "tesseract result");
    lua_createtable(L, 0, 4);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < npages; i++) {
        if (i > 0) luaL_addchar(&b, '\f');
        if (pages[i].text_len > 0)
            luaL_addlstring(&b, r->strings.data + pages[i].text_off, pages[i].text_len);
    }
    luaL_pushresult(&b);
    lua_setfield(L, -2, "text");
    lua_pushstring(L, job->languages);
    lua_setfield(L, -2, "language");
    lua_createtable(L, (int)npages, 0);
    for (size_t i = 0; i < npages; i++) {
        lua_createtable(L, 0, 3);
        set_int(L, "width", pages[i].width);
        set_int(L, "height", pages[i].height);
        if (pages[i].angle >= 0) set_int(L, "angle", pages[i].angle);
        if (pages[i].number > 0) set_int(L, "page", pages[i].number);
        if (pages[i].dpi > 0) set_int(L, "dpi", pages[i].dpi);
        if (pages[i].kept) {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "kept");
        }
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "pages");
    lua_createtable(L, (int)nlines, 0);
    for (size_t i = 0; i < nlines; i++) {
        lua_createtable(L, 0, 5);
        push_text(L, r, lines[i].text_off, lines[i].text_len);
        lua_setfield(L, -2, "text");
        lua_pushnumber(L, lines[i].confidence);
        lua_setfield(L, -2, "confidence");
        push_box(L, &lines[i].box);
        lua_setfield(L, -2, "box");
        push_words(L, r, &lines[i]);
        lua_setfield(L, -2, "words");
        set_int(L, "page", lines[i].page);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "lines");
}

/* pool:poll() -> list of finished jobs, {id=, res=} or {id=, err=}; never blocks. */
static int l_poll(lua_State *L) {
    lpool *lp = check_open(L);
    tp_job *head = tp_pool_collect(lp->pool);
    int n = 0;
    lua_newtable(L);
    for (tp_job *j = head; j; j = j->next) {
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, (lua_Integer)j->id);
        lua_setfield(L, -2, "id");
        if (j->out.kind == TP_OK) {
            push_result(L, j);
            lua_setfield(L, -2, "res");
        } else {
            push_error_table(L, j->out.kind, j->out.message);
            lua_setfield(L, -2, "err");
        }
        lua_rawseti(L, -2, ++n);
    }
    /* Released only once every table exists: an error above leaves all of them to the next poll. */
    while (head) {
        tp_job *next = head->next;
        tp_pool_release(lp->pool, head);
        head = next;
    }
    return 1;
}

/* pool:wait(id[, timeout_s]) -> res | nil, err (timeout: kind "timeout", the job stays pending). */
static int l_wait(lua_State *L) {
    lpool *lp = check_open(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    lua_Number timeout = luaL_optnumber(L, 3, -1);
    luaL_argcheck(L, lua_isnoneornil(L, 3) || (timeout >= 0 && timeout <= 1e9), 3,
                  "timeout must be seconds from 0 to 1e9");
    tp_kind kind = TP_OK;
    tp_job *job = tp_pool_wait(lp->pool, (int64_t)id, (double)timeout, &kind);
    if (job == NULL) {
        char msg[128];
        if (kind != TP_TIMEOUT) {
            snprintf(msg, sizeof msg, "no pending tesseract job %lld", (long long)id);
            return fail(L, kind, msg);
        }
        /* pending = true tells this wait's own timeout from a job that ended over page_timeout */
        snprintf(msg, sizeof msg, "tesseract job %lld not finished after %g s", (long long)id,
                 (double)timeout);
        fail(L, kind, msg);
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "pending");
        return 2;
    }
    int nret = 1;
    if (job->out.kind == TP_OK) {
        push_result(L, job);
    } else {
        lua_pushnil(L);
        push_error_table(L, job->out.kind, job->out.message);
        nret = 2;
    }
    tp_pool_release(lp->pool, job);
    return nret;
}

/* pool:progress(id) -> percent (0..100 over all pages), pages_done, pages, state | nil (no such
 * job: never submitted, or already collected) */
static int l_progress(lua_State *L) {
    static const char *const states[] = { NULL, "queued", "running", "finished" };
    lpool *lp = check_open(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    int percent = 0, done = 0, pages = 0;
    int state = tp_pool_progress(lp->pool, (int64_t)id, &percent, &done, &pages);
    if (state == 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, percent);
    lua_pushinteger(L, done);
    lua_pushinteger(L, pages);
    lua_pushstring(L, states[state]);
    return 4;
}

static int l_cancel(lua_State *L) {
    lpool *lp = check_open(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    lua_pushboolean(L, tp_pool_cancel(lp->pool, (int64_t)id));
    return 1;
}

static int l_fd(lua_State *L) {
    lpool *lp = check_open(L);
    lua_pushinteger(L, tp_pool_fd(lp->pool));
    return 1;
}

static int l_pending(lua_State *L) {
    lpool *lp = check_open(L);
    lua_pushinteger(L, (lua_Integer)tp_pool_pending(lp->pool));
    return 1;
}

/* pool:stats() -> {queued=, running=, finished=, busy=, threads=, engines=, loading=, loads=,
 * caller_loads=}: for progress displays, and to see where and when models load. */
static int l_stats(lua_State *L) {
    lpool *lp = check_open(L);
    tp_stats st;
    tp_pool_stats(lp->pool, &st);
    lua_createtable(L, 0, 9);
    set_int(L, "queued", (lua_Integer)st.queued);
    set_int(L, "running", (lua_Integer)st.running);
    set_int(L, "finished", (lua_Integer)st.finished);
    set_int(L, "busy", (lua_Integer)st.busy);
    set_int(L, "threads", lp->threads);
    set_int(L, "engines", (lua_Integer)st.engines);
    set_int(L, "loading", (lua_Integer)st.loading);
    set_int(L, "loads", (lua_Integer)st.loads);
    set_int(L, "caller_loads", (lua_Integer)st.caller_loads);
    return 1;
}

/* pool:warm([languages][, timeout]) -> true | nil, err. Asks every worker to load the engine
 * of `languages` (the pool's default when nil) before its next job, and returns at once; with
 * a timeout (seconds, math.huge: no limit) waits that long for every worker to have it:
 * a model that cannot load is invalid_input, a wait too short timeout (the loads go on). */
static int l_warm(lua_State *L) {
    lpool *lp = check_open(L);
    char msg[TP_MSG_LEN], langs[TP_MAX_LANGS_LEN + 1];
    int wait = !lua_isnoneornil(L, 3);
    lua_Number timeout = luaL_optnumber(L, 3, -1);
    luaL_argcheck(L, !wait || timeout >= 0, 3, "timeout must be seconds, 0 or more");
    lua_settop(L, 3);
    if (!job_languages(L, 2, lp->datapath, lp->psm, lp->languages, langs, msg, sizeof msg))
        return fail(L, TP_INVALID_INPUT, msg);
    tp_pool_warm(lp->pool, langs);
    if (wait) {
        tp_kind kind = tp_pool_warm_wait(lp->pool, timeout > 1e9 ? -1.0 : (double)timeout, msg,
                                         sizeof msg);
        if (kind != TP_OK) return fail(L, kind, msg);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* close(), __gc and __close: cancels what runs, joins the workers, frees everything. Idempotent. */
static int l_close(lua_State *L) {
    lpool *lp = check_pool(L);
    tp_pool *p = lp->pool;
    lp->pool = NULL;
    tp_pool_destroy(p);
    return 0;
}

/* pool:usable() -> false once closed, and in a process forked after the pool was made. */
static int l_usable(lua_State *L) {
    lpool *lp = check_pool(L);
    lua_pushboolean(L, lp->pool != NULL);
    return 1;
}

static int l_tostring(lua_State *L) {
    lpool *lp = check_pool(L);
    if (lp->pool == NULL)
        lua_pushfstring(L, "ocr.tesseract.pool (%s, closed)", lp->languages);
    else
        lua_pushfstring(L, "ocr.tesseract.pool (%s, %d thread%s)", lp->languages, lp->threads,
                        lp->threads == 1 ? "" : "s");
    return 1;
}

static const luaL_Reg pool_methods[] = {
    {"submit", l_submit},
    {"poll", l_poll},
    {"wait", l_wait},
    {"progress", l_progress},
    {"cancel", l_cancel},
    {"fd", l_fd},
    {"pending", l_pending},
    {"stats", l_stats},
    {"warm", l_warm},
    {"usable", l_usable},
    {"close", l_close},
    {NULL, NULL}
};

static const luaL_Reg pool_meta[] = {
    {"__gc", l_close},
    {"__close", l_close},
    {"__tostring", l_tostring},
    {NULL, NULL}
};

static const luaL_Reg module_funcs[] = {
    {"pool", l_pool},
    {"languages", l_languages},
    {"datapath", l_datapath},
    {"_check_image", l_check_image},
    {NULL, NULL}
};

int luaopen_ocr_tesseract(lua_State *L) {
    if (luaL_newmetatable(L, POOL_MT)) {
        luaL_setfuncs(L, pool_meta, 0);
        luaL_newlib(L, pool_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, DIR_MT)) {
        lua_pushcfunction(L, dir_guard_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newlib(L, module_funcs);
    lua_pushstring(L, TessVersion());
    lua_setfield(L, -2, "_VERSION");
    char lept[64] = "leptonica";
    char *v = getLeptonicaVersion();   /* copied and freed before any Lua call can raise */
    if (v) snprintf(lept, sizeof lept, "%s", v);
    lept_free(v);
    lua_pushstring(L, lept);
    lua_setfield(L, -2, "_LEPTONICA_VERSION");
    return 1;
}
