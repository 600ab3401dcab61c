/* ocr.core multipart: multipart/form-data bodies (RFC 7578) built in memory, and plans of
 * bodies whose files are streamed from disk by the caller's transport.
 * The body is produced in two passes over the same writer code, one measuring and one copying,
 * into a userdata of exactly the measured size: the size bound is checked before anything big
 * is allocated, the memory is Lua's (nothing leaks when a Lua error is raised), and the writes
 * cannot disagree with the measurement because they are the same code.
 * A plan is the same encoding with every file's content left out (an empty body), cut where
 * each file's content goes: the bytes around the files are exactly core.multipart's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/rand.h>
#include "ocr.h"
#include "form.h"

#define MP_MAX_BODY     ((size_t)1 << 30)   /* in-memory bodies only */
#define MP_MAX_PARTS    10000
#define MP_MAX_BOUNDARY OCR_FORM_MAX_BOUNDARY
#define MP_DEFAULT_TYPE "application/octet-stream"
#define MP_MAX_PLAN     (1ULL << 53)   /* a length every Lua holds exactly */

typedef ocr_form_part mp_part;   /* a plain field has neither filename nor ctype */

typedef struct {                 /* a plan's file part: its path (NULL for other parts) */
    const char *path;
    size_t pathl;
    unsigned long long size;
} mp_file;

/* ---- part validation ---------------------------------------------------------------------- */

/* Raw field access: the parts are plain data, and __index metamethods must not run (and be
 * able to mutate what we already hold pointers into) halfway through. */
static int raw_field(lua_State *L, int t, const char *name) {
    lua_pushstring(L, name);
    lua_rawget(L, t);
    return lua_type(L, -1);
}

/* Integral numbers print without a fraction on every Lua version; see cos_sign.c. */
static void push_number_string(lua_State *L, int idx, int part) {
    lua_Number d;
    char tmp[64];
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) {
        snprintf(tmp, sizeof tmp, "%lld", (long long)lua_tointeger(L, idx));
        lua_pushstring(L, tmp);
        return;
    }
#endif
    d = lua_tonumber(L, idx);
    if (d - d != 0) luaL_error(L, "multipart: part #%d: 'value' must be a finite number", part);
    if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (lua_Number)(long long)d)
        snprintf(tmp, sizeof tmp, "%lld", (long long)d);
    else
        snprintf(tmp, sizeof tmp, "%.14g", (double)d);
    lua_pushstring(L, tmp);
}

/* `file` parts exist only in plans (core.multipart has no way to send them). */
static void check_known_fields(lua_State *L, int t, int part, int allow_file) {
    static const char *const known[] = { "name", "value", "filename", "content_type", "data",
                                         "file" };
    size_t nknown = sizeof known / sizeof known[0] - (allow_file ? 0 : 1);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        size_t i, kl, ok = 0;
        const char *k;
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "multipart: part #%d: unexpected %s key", part, luaL_typename(L, -2));
        k = lua_tolstring(L, -2, &kl);
        for (i = 0; i < nknown; i++)
            if (kl == strlen(known[i]) && memcmp(k, known[i], kl) == 0) ok = 1;
        if (!ok)
            luaL_error(L, "multipart: part #%d: unknown field '%s'", part, k);
        lua_pop(L, 1);
    }
}

/* A content type goes verbatim into a header line: no control characters. */
static void check_ctype(lua_State *L, const char *s, size_t n, int part) {
    size_t i;
    if (n == 0) luaL_error(L, "multipart: part #%d: 'content_type' must not be empty", part);
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            luaL_error(L, "multipart: part #%d: 'content_type' contains a control character",
                       part);
}

/* The last component of a path: a file part's default filename. */
static const char *base_name(const char *path, size_t n, size_t *len) {
    size_t i = n;
    while (i > 0 && path[i - 1] != '/') i--;
    *len = n - i;
    return path + i;
}

/* Reads part #i (the table at t) into *p, and a file part's path into *f (plans only:
 * allow_file). Strings it creates are left on the stack above t (the caller pops them after
 * anchoring the one at *anchor, the part's content, which may have been converted from a
 * number). Returns how many it left. */
static int read_part(lua_State *L, int t, int i, mp_part *p, int allow_file, mp_file *f,
                     int *anchor) {
    int top = lua_gettop(L), tv, td, tf, tc, tfile;
    check_known_fields(L, t, i, allow_file);
    if (raw_field(L, t, "name") != LUA_TSTRING)
        luaL_error(L, "multipart: part #%d: 'name' must be a string", i);
    p->name = lua_tolstring(L, -1, &p->namel);
    if (p->namel == 0) luaL_error(L, "multipart: part #%d: 'name' must not be empty", i);
    tv = raw_field(L, t, "value");
    td = raw_field(L, t, "data");
    tf = raw_field(L, t, "filename");
    tc = raw_field(L, t, "content_type");
    tfile = raw_field(L, t, "file");   /* stack: name value data filename ctype file */
    f->path = NULL;
    if ((tv != LUA_TNIL) + (td != LUA_TNIL) + (tfile != LUA_TNIL) != 1)
        luaL_error(L, allow_file
                   ? "multipart: part #%d: exactly one of 'value', 'data' and 'file' is required"
                   : "multipart: part #%d: exactly one of 'value' and 'data' is required", i);
    if (tv != LUA_TNIL) {
        if (tf != LUA_TNIL || tc != LUA_TNIL)
            luaL_error(L, allow_file
                       ? "multipart: part #%d: 'filename' and 'content_type' need 'data' or 'file'"
                       : "multipart: part #%d: 'filename' and 'content_type' need 'data'", i);
        if (tv == LUA_TNUMBER) {
            push_number_string(L, top + 2, i);
            lua_replace(L, top + 2);
        } else if (tv != LUA_TSTRING) {
            luaL_error(L, "multipart: part #%d: 'value' must be a string or number, got %s", i,
                       luaL_typename(L, top + 2));
        }
        p->body = lua_tolstring(L, top + 2, &p->bodyl);
        p->filename = p->ctype = NULL;
        p->filenamel = p->ctypel = 0;
        *anchor = top + 2;
        return lua_gettop(L) - top;
    }
    if (td != LUA_TNIL) {
        if (td != LUA_TSTRING)
            luaL_error(L, "multipart: part #%d: 'data' must be a string, got %s", i,
                       luaL_typename(L, top + 3));
        if (tf != LUA_TSTRING)
            luaL_error(L, "multipart: part #%d: 'data' needs a string 'filename'", i);
        p->body = lua_tolstring(L, top + 3, &p->bodyl);
        p->filename = lua_tolstring(L, top + 4, &p->filenamel);
        *anchor = top + 3;
    } else {
        if (tfile != LUA_TSTRING)
            luaL_error(L, "multipart: part #%d: 'file' must be a string, got %s", i,
                       luaL_typename(L, top + 6));
        f->path = lua_tolstring(L, top + 6, &f->pathl);
        if (tf == LUA_TNIL)
            p->filename = base_name(f->path, f->pathl, &p->filenamel);
        else if (tf != LUA_TSTRING)
            luaL_error(L, "multipart: part #%d: 'filename' must be a string", i);
        else
            p->filename = lua_tolstring(L, top + 4, &p->filenamel);
        p->body = "";    /* the hole the file's content goes into */
        p->bodyl = 0;
        *anchor = top + 6;
    }
    if (tc == LUA_TNIL) {
        p->ctype = MP_DEFAULT_TYPE;
        p->ctypel = sizeof MP_DEFAULT_TYPE - 1;
    } else if (tc != LUA_TSTRING) {
        luaL_error(L, "multipart: part #%d: 'content_type' must be a string", i);
    } else {
        p->ctype = lua_tolstring(L, top + 5, &p->ctypel);
        check_ctype(L, p->ctype, p->ctypel, i);
    }
    return lua_gettop(L) - top;
}

/* ---- boundary ----------------------------------------------------------------------------- */

/* RFC 2046 bchars: DIGIT ALPHA ' ( ) + _ , - . / : = ? and space (never last). */
static int is_bchar(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c != '\0' && strchr("'()+_,-./:=? ", c) != NULL);
}

static void check_boundary(lua_State *L, const char *b, size_t n) {
    size_t i;
    luaL_argcheck(L, n >= 1 && n <= MP_MAX_BOUNDARY, 2, "boundary must be 1 to 70 characters");
    for (i = 0; i < n; i++)
        luaL_argcheck(L, is_bchar((unsigned char)b[i]), 2,
                      "boundary contains a character not allowed by RFC 2046");
    luaL_argcheck(L, b[n - 1] != ' ', 2, "boundary must not end with a space");
}

/* "----ocr" + 32 hex digits from OpenSSL's CSPRNG: 39 characters, all bcharsnospace. */
static int random_boundary(char *out, size_t *len) {
    unsigned char rnd[16];
    if (RAND_bytes(rnd, (int)sizeof rnd) != 1) return 0;
    memcpy(out, "----ocr", 7);
    ocr_hex_encode(rnd, sizeof rnd, out + 7);
    *len = 7 + 2 * sizeof rnd;
    return 1;
}

/* RFC 2045 token characters need no quoting in the boundary parameter; anything else does. */
static int needs_quotes(const char *b, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (strchr("()<>@,;:\\\"/[]?= ", b[i]) != NULL) return 1;
    return 0;
}

static int push_error(lua_State *L, const char *msg) {
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

/* The caller's boundary (argument 2, checked) or a random one written into genb; NULL when
 * RAND_bytes failed. */
static const char *pick_boundary(lua_State *L, char *genb, size_t *bl) {
    const char *bnd;
    if (lua_isstring(L, 2)) {
        bnd = lua_tolstring(L, 2, bl);
        check_boundary(L, bnd, *bl);
        return bnd;
    }
    return random_boundary(genb, bl) ? genb : NULL;
}

/* Keeps the boundary out of every content held in memory: a random one (bnd == genb) is drawn
 * again, up to four times, while it collides. Returns 0, the 1-based part whose content still
 * holds it, or -1 when RAND_bytes failed. */
static int settle_boundary(const mp_part *parts, int n, const char *bnd, char *genb, size_t *bl) {
    int tries, hit = ocr_form_collision(parts, n, bnd, *bl);
    for (tries = 0; hit && bnd == genb && tries < 4; tries++) {
        if (!random_boundary(genb, bl)) return -1;
        hit = ocr_form_collision(parts, n, bnd, *bl);
    }
    return hit;
}

static int push_collision(lua_State *L, int hit) {
    if (hit < 0) return push_error(L, "multipart: RAND_bytes failed");
    lua_pushnil(L);
    lua_pushfstring(L, "multipart: boundary occurs in the content of part #%d", hit);
    return 2;
}

static void push_content_type(lua_State *L, const char *bnd, size_t bl) {
    int quote = needs_quotes(bnd, bl);
    lua_pushstring(L, quote ? "multipart/form-data; boundary=\"" : "multipart/form-data; boundary=");
    lua_pushlstring(L, bnd, bl);
    lua_pushstring(L, quote ? "\"" : "");
    lua_concat(L, 3);
}

/* ---- files -------------------------------------------------------------------------------- */

/* Opens the file as the transport will read it, to learn that it is a readable regular file
 * and its size (into f->size): NULL, or why not. O_NONBLOCK: opening a FIFO must not hang the
 * planning (it is then refused as not a regular file); on a regular file the flag does nothing. */
static const char *probe_file(mp_file *f) {
    struct stat st;
    int fd, e;
    if (strlen(f->path) != f->pathl) return "the path contains a NUL byte";
    if ((fd = open(f->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) return strerror(errno);
    e = fstat(fd, &st) != 0 ? errno : 0;
    close(fd);
    if (e != 0) return strerror(e);
    if (!S_ISREG(st.st_mode)) return "not a regular file";
    f->size = (unsigned long long)st.st_size;
    return NULL;
}

/* ---- entry points -------------------------------------------------------------------------- */

/* Reads the parts (argument 1) into an array left on the stack in a userdata; with allow_file
 * (plans), *files gets each part's file, path NULL for a part held in memory. */
static mp_part *read_parts(lua_State *L, int *count, int allow_file, mp_file **files) {
    int n, i, anchor;
    mp_part *parts;
    mp_file *f, ignored;
    luaL_checktype(L, 1, LUA_TTABLE);
    n = (int)(lua_rawlen(L, 1) > MP_MAX_PARTS ? MP_MAX_PARTS + 1 : lua_rawlen(L, 1));
    luaL_argcheck(L, n >= 1, 1, "at least one part is required");
    luaL_argcheck(L, n <= MP_MAX_PARTS, 1, "too many parts");
    lua_newtable(L);                 /* keeps converted strings alive */
    anchor = lua_gettop(L);
    parts = (mp_part *)lua_newuserdata(L, (size_t)n * (sizeof *parts + (allow_file ? sizeof *f : 0)));
    f = allow_file ? (mp_file *)(parts + n) : NULL;
    for (i = 1; i <= n; i++) {
        int t, left, content;
        lua_rawgeti(L, 1, i);
        t = lua_gettop(L);
        if (!lua_istable(L, t))
            luaL_error(L, "multipart: part #%d must be a table, got %s", i, luaL_typename(L, t));
        left = read_part(L, t, i, &parts[i - 1], allow_file, f ? &f[i - 1] : &ignored, &content);
        /* the content may be a string created from a number: anchor it before popping */
        lua_pushvalue(L, content);
        lua_rawseti(L, anchor, i);
        lua_pop(L, left + 1);
    }
    *count = n;
    if (files) *files = f;
    return parts;
}

/* multipart(parts[, boundary]) -> body, content_type | nil, message */
static int l_multipart(lua_State *L) {
    int n, hit;
    mp_part *parts;
    char genb[MP_MAX_BOUNDARY];
    const char *bnd;
    size_t bl = 0, len;
    char *body;

    if (!lua_isnoneornil(L, 2) && lua_type(L, 2) != LUA_TSTRING)
        luaL_argerror(L, 2, lua_pushfstring(L, "string expected, got %s", luaL_typename(L, 2)));
    lua_settop(L, 2);
    parts = read_parts(L, &n, 0, NULL);
    if ((bnd = pick_boundary(L, genb, &bl)) == NULL)
        return push_error(L, "multipart: RAND_bytes failed");

    /* Measure first: the size does not depend on which random boundary is finally used (they
     * all have the same length), and refusing early avoids scanning a huge body for nothing. */
    len = ocr_form_encode(NULL, 0, parts, n, bnd, bl);
    if (len > MP_MAX_BODY) return push_error(L, "multipart: body would be larger than 1 GiB");
    if ((hit = settle_boundary(parts, n, bnd, genb, &bl)) != 0) return push_collision(L, hit);

    body = (char *)lua_newuserdata(L, len);
    if (ocr_form_encode(body, len, parts, n, bnd, bl) != len)
        return luaL_error(L, "multipart: internal size mismatch");
    lua_pushlstring(L, body, len);
    push_content_type(L, bnd, bl);
    return 2;
}

/* multipart_plan(parts[, boundary]) -> pieces, content_type, length | nil, message
 * pieces: strings (everything but the files' contents, consecutive ones merged) alternating
 * with {file = path, size = bytes} where each file's content goes; length: their total. */
static int l_multipart_plan(lua_State *L) {
    int n, i, hit, k = 0;
    mp_part *parts;
    mp_file *files;
    char genb[MP_MAX_BOUNDARY];
    const char *bnd, *why;
    size_t bl = 0, len, cursor = 0, *starts;
    unsigned long long total = 0;
    char *buf;

    if (!lua_isnoneornil(L, 2) && lua_type(L, 2) != LUA_TSTRING)
        luaL_argerror(L, 2, lua_pushfstring(L, "string expected, got %s", luaL_typename(L, 2)));
    lua_settop(L, 2);
    parts = read_parts(L, &n, 1, &files);
    if ((bnd = pick_boundary(L, genb, &bl)) == NULL)
        return push_error(L, "multipart: RAND_bytes failed");

    /* Every part is well-formed (a malformed one has raised): now whether the files are there.
     * Their sizes are taken now; a file that changes before it is sent breaks the length. */
    for (i = 0; i < n; i++) {
        if (files[i].path == NULL) continue;
        if ((why = probe_file(&files[i])) != NULL) {
            lua_pushnil(L);
            lua_pushfstring(L, "multipart: part #%d: cannot read '%s': %s", i + 1, files[i].path, why);
            return 2;
        }
        if (files[i].size > MP_MAX_PLAN - total)
            return push_error(L, "multipart: body would be larger than 2^53 bytes");
        total += files[i].size;
    }

    len = ocr_form_encode(NULL, 0, parts, n, bnd, bl);
    if (len > MP_MAX_BODY)
        return push_error(L, "multipart: the parts held in memory would be larger than 1 GiB");
    if (len > MP_MAX_PLAN - total)
        return push_error(L, "multipart: body would be larger than 2^53 bytes");
    /* Only the contents held in memory can be scanned for the boundary: a file is read later, by
     * the transport. A random boundary carries 128 random bits, which makes a file that happens
     * to contain it negligible; a caller who passes a boundary vouches for the files too. */
    if ((hit = settle_boundary(parts, n, bnd, genb, &bl)) != 0) return push_collision(L, hit);

    buf = (char *)lua_newuserdata(L, len);
    starts = (size_t *)lua_newuserdata(L, (size_t)n * sizeof *starts);
    if (ocr_form_encode_at(buf, len, parts, n, bnd, bl, starts) != len)
        return luaL_error(L, "multipart: internal size mismatch");
    lua_newtable(L);
    for (i = 0; i < n; i++) {
        if (files[i].path == NULL) continue;
        if (starts[i] > cursor) {   /* never empty in fact: a part's head comes first */
            lua_pushlstring(L, buf + cursor, starts[i] - cursor);
            lua_rawseti(L, -2, ++k);
        }
        lua_createtable(L, 0, 2);
        lua_pushlstring(L, files[i].path, files[i].pathl);
        lua_setfield(L, -2, "file");
        ocr_push_uint(L, files[i].size);
        lua_setfield(L, -2, "size");
        lua_rawseti(L, -2, ++k);
        cursor = starts[i];          /* the file's content is empty in buf */
    }
    lua_pushlstring(L, buf + cursor, len - cursor);
    lua_rawseti(L, -2, ++k);
    push_content_type(L, bnd, bl);
    ocr_push_uint(L, total + len);
    return 3;
}

const luaL_Reg ocr_multipart_funcs[] = {
    { "multipart", l_multipart },
    { "multipart_plan", l_multipart_plan },
    { NULL, NULL }
};
