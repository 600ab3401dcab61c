/* ocr.core multipart: multipart/form-data bodies (RFC 7578) built in memory, and plans of
 * bodies whose files are streamed from disk by the caller's transport.
 * The body is produced in two passes over the same writer code, one measuring and one copying,
 * into a userdata of exactly the measured size: the size bound is checked before anything big
 * is allocated, the memory is Lua's (nothing leaks when a Lua error is raised), and the writes
 * cannot disagree with the measurement because they are the same code.
 * A plan is the same encoding with every file's content left out (an empty body), cut where
 * each file's content goes: the bytes around the files are exactly core.multipart's. */
#include <string.h>
#include "ocr.h"
#include "args.h"
#include "form.h"

#define MP_MAX_BODY     ((size_t)1 << 30)   /* in-memory bodies only */
#define MP_MAX_PLAN     (1ULL << 53)        /* a length every Lua holds exactly */

/* ---- part validation ---------------------------------------------------------------------- */

/* `file` parts exist only in plans (core.multipart has no way to send them). */
enum { F_NAME, F_VALUE, F_FILENAME, F_CTYPE, F_DATA, F_FILE };
static const char *const known_fields[] = { "name", "value", "filename", "content_type", "data",
                                            "file", NULL };

static void check_known_fields(lua_State *L, int t, int part, int allow_file) {
    unsigned present;
    if (!ocr_table_keys(L, t, known_fields, &present)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "multipart: part #%d: unexpected %s key", part, luaL_typename(L, -1));
        luaL_error(L, "multipart: part #%d: unknown field '%s'", part, lua_tostring(L, -1));
    }
    if (!allow_file && (present & (1u << F_FILE)))
        luaL_error(L, "multipart: part #%d: unknown field 'file'", part);
}

/* Reads part #i (the table at t) into *p (a file part's path only in plans: allow_file). Strings
 * it creates are left on the stack above t (the caller pops them after anchoring the one at
 * *anchor, the part's content, which may have been converted from a number). Returns how many
 * it left. */
static int read_part(lua_State *L, int t, int i, ocr_form_part *p, int allow_file, int *anchor) {
    int top = lua_gettop(L), tv, td, tf, tc, tfile;
    const char *why;
    check_known_fields(L, t, i, allow_file);
    memset(p, 0, sizeof *p);
    if (ocr_rawfield(L, t, "name") != LUA_TSTRING)
        luaL_error(L, "multipart: part #%d: 'name' must be a string", i);
    p->name = lua_tolstring(L, -1, &p->namel);
    tv = ocr_rawfield(L, t, "value");
    td = ocr_rawfield(L, t, "data");
    tf = ocr_rawfield(L, t, "filename");
    tc = ocr_rawfield(L, t, "content_type");
    tfile = ocr_rawfield(L, t, "file");   /* stack: name value data filename ctype file */
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
            if (!ocr_push_number_string(L, top + 2))
                luaL_error(L, "multipart: part #%d: 'value' must be a finite number", i);
            lua_replace(L, top + 2);
        } else if (tv != LUA_TSTRING) {
            luaL_error(L, "multipart: part #%d: 'value' must be a string or number, got %s", i,
                       luaL_typename(L, top + 2));
        }
        p->body = lua_tolstring(L, top + 2, &p->bodyl);
        *anchor = top + 2;
    } else if (td != LUA_TNIL) {
        if (td != LUA_TSTRING)
            luaL_error(L, "multipart: part #%d: 'data' must be a string, got %s", i,
                       luaL_typename(L, top + 3));
        if (tf != LUA_TSTRING)
            luaL_error(L, "multipart: part #%d: 'data' needs a string 'filename'", i);
        p->body = lua_tolstring(L, top + 3, &p->bodyl);
        *anchor = top + 3;
    } else {
        if (tfile != LUA_TSTRING)
            luaL_error(L, "multipart: part #%d: 'file' must be a string, got %s", i,
                       luaL_typename(L, top + 6));
        p->file = lua_tolstring(L, top + 6, &p->filel);
        if (tf != LUA_TNIL && tf != LUA_TSTRING)
            luaL_error(L, "multipart: part #%d: 'filename' must be a string", i);
        *anchor = top + 6;
    }
    if (tf == LUA_TSTRING) p->filename = lua_tolstring(L, top + 4, &p->filenamel);
    if (tc == LUA_TSTRING) p->ctype = lua_tolstring(L, top + 5, &p->ctypel);
    else if (tc != LUA_TNIL) luaL_error(L, "multipart: part #%d: 'content_type' must be a string", i);
    if ((why = ocr_form_check(p, 1)) != NULL) luaL_error(L, "multipart: part #%d: %s", i, why);
    ocr_form_defaults(p);
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
    luaL_argcheck(L, n >= 1 && n <= OCR_FORM_MAX_BOUNDARY, 2, "boundary must be 1 to 70 characters");
    for (i = 0; i < n; i++)
        luaL_argcheck(L, is_bchar((unsigned char)b[i]), 2,
                      "boundary contains a character not allowed by RFC 2046");
    luaL_argcheck(L, b[n - 1] != ' ', 2, "boundary must not end with a space");
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

/* The caller's boundary (argument 2, checked), or NULL: a random one, of this length. */
static const char *given_boundary(lua_State *L, size_t *bl) {
    const char *bnd;
    if (!lua_isstring(L, 2)) {
        *bl = OCR_FORM_BOUNDARY_LEN;
        return NULL;
    }
    bnd = lua_tolstring(L, 2, bl);
    check_boundary(L, bnd, *bl);
    return bnd;
}

/* Keeps the boundary out of every content held in memory: the caller's must not occur there, a
 * random one (drawn into genb) is drawn again while it does. Returns it, or NULL after pushing
 * nil and a message. Only the contents held in memory can be scanned: a file is read later, by
 * the transport. A random boundary carries 128 random bits, which makes a file that happens to
 * contain it negligible; a caller who passes a boundary vouches for the files too. */
static const char *settle_boundary(lua_State *L, const ocr_form_part *parts, int n,
                                   const char *given, size_t bl, char *genb) {
    int hit = given ? ocr_form_collision(parts, n, given, bl) : ocr_form_boundary(parts, n, genb);
    if (hit == 0) return given ? given : genb;
    if (hit < 0) push_error(L, "multipart: no random bytes for a boundary");
    else {
        lua_pushnil(L);
        lua_pushfstring(L, "multipart: boundary occurs in the content of part #%d", hit);
    }
    return NULL;
}

static void push_content_type(lua_State *L, const char *bnd, size_t bl) {
    int quote = needs_quotes(bnd, bl);
    lua_pushstring(L, quote ? "multipart/form-data; boundary=\"" : "multipart/form-data; boundary=");
    lua_pushlstring(L, bnd, bl);
    lua_pushstring(L, quote ? "\"" : "");
    lua_concat(L, 3);
}

/* ---- entry points -------------------------------------------------------------------------- */

/* Reads the parts (argument 1) into an array left on the stack in a userdata; file parts
 * (plans only: allow_file) get their path, the others their content. */
static ocr_form_part *read_parts(lua_State *L, int *count, int allow_file) {
    int n, i, anchor;
    ocr_form_part *parts;
    luaL_checktype(L, 1, LUA_TTABLE);
    n = (int)(lua_rawlen(L, 1) > OCR_FORM_MAX_PARTS ? OCR_FORM_MAX_PARTS + 1 : lua_rawlen(L, 1));
    luaL_argcheck(L, n >= 1, 1, "at least one part is required");
    luaL_argcheck(L, n <= OCR_FORM_MAX_PARTS, 1, "too many parts");
    lua_newtable(L);                 /* keeps converted strings alive */
    anchor = lua_gettop(L);
    parts = (ocr_form_part *)lua_newuserdata(L, (size_t)n * sizeof *parts);
    for (i = 1; i <= n; i++) {
        int t, left, content;
        lua_rawgeti(L, 1, i);
        t = lua_gettop(L);
        if (!lua_istable(L, t))
            luaL_error(L, "multipart: part #%d must be a table, got %s", i, luaL_typename(L, t));
        left = read_part(L, t, i, &parts[i - 1], allow_file, &content);
        /* the content may be a string created from a number: anchor it before popping */
        lua_pushvalue(L, content);
        lua_rawseti(L, anchor, i);
        lua_pop(L, left + 1);
    }
    *count = n;
    return parts;
}

static void check_boundary_arg(lua_State *L) {
    if (!lua_isnoneornil(L, 2) && lua_type(L, 2) != LUA_TSTRING)
        luaL_argerror(L, 2, lua_pushfstring(L, "string expected, got %s", luaL_typename(L, 2)));
    lua_settop(L, 2);
}

/* multipart(parts[, boundary]) -> body, content_type | nil, message */
int ocr_core_multipart(lua_State *L) {
    int n;
    ocr_form_part *parts;
    char genb[OCR_FORM_BOUNDARY_LEN];
    const char *bnd;
    size_t bl, len;
    unsigned long long total;
    char *body;

    check_boundary_arg(L);
    parts = read_parts(L, &n, 0);
    bnd = given_boundary(L, &bl);
    /* Measure first: the size depends only on the boundary's length, and refusing early avoids
     * scanning a huge body for nothing. */
    len = ocr_form_size(parts, n, bl, &total);
    if (len > MP_MAX_BODY) return push_error(L, "multipart: body would be larger than 1 GiB");
    if ((bnd = settle_boundary(L, parts, n, bnd, bl, genb)) == NULL) return 2;

    body = (char *)lua_newuserdata(L, len);
    if (ocr_form_encode(body, len, parts, n, bnd, bl, NULL) != len)
        return luaL_error(L, "multipart: internal size mismatch");
    lua_pushlstring(L, body, len);
    push_content_type(L, bnd, bl);
    return 2;
}

/* multipart_plan(parts[, boundary]) -> pieces, content_type, length | nil, message
 * pieces: strings (everything but the files' contents, consecutive ones merged) alternating
 * with {file = path, size = bytes} where each file's content goes; length: their total. */
int ocr_core_multipart_plan(lua_State *L) {
    int n, i, k = 0;
    ocr_form_part *parts;
    char genb[OCR_FORM_BOUNDARY_LEN];
    const char *bnd, *why;
    size_t bl, len, cursor = 0, *starts;
    unsigned long long total;
    char *buf;

    check_boundary_arg(L);
    parts = read_parts(L, &n, 1);
    bnd = given_boundary(L, &bl);

    /* Every part is well-formed (a malformed one has raised): now whether the files are there.
     * Their sizes are taken now; a file that changes before it is sent breaks the length. */
    for (i = 0; i < n; i++) {
        if (parts[i].file == NULL) continue;
        if ((why = ocr_form_probe(&parts[i])) != NULL) {
            lua_pushnil(L);
            lua_pushfstring(L, "multipart: part #%d: cannot read '%s': %s", i + 1, parts[i].file, why);
            return 2;
        }
    }
    len = ocr_form_size(parts, n, bl, &total);
    if (len > MP_MAX_BODY)
        return push_error(L, "multipart: the parts held in memory would be larger than 1 GiB");
    if (total > MP_MAX_PLAN) return push_error(L, "multipart: body would be larger than 2^53 bytes");
    if ((bnd = settle_boundary(L, parts, n, bnd, bl, genb)) == NULL) return 2;

    buf = (char *)lua_newuserdata(L, len);
    starts = (size_t *)lua_newuserdata(L, (size_t)n * sizeof *starts);
    if (ocr_form_encode(buf, len, parts, n, bnd, bl, starts) != len)
        return luaL_error(L, "multipart: internal size mismatch");
    lua_newtable(L);
    for (i = 0; i < n; i++) {
        if (parts[i].file == NULL) continue;
        if (starts[i] > cursor) {   /* never empty in fact: a part's head comes first */
            lua_pushlstring(L, buf + cursor, starts[i] - cursor);
            lua_rawseti(L, -2, ++k);
        }
        lua_createtable(L, 0, 2);
        lua_pushlstring(L, parts[i].file, parts[i].filel);
        lua_setfield(L, -2, "file");
        ocr_push_uint(L, parts[i].size);
        lua_setfield(L, -2, "size");
        lua_rawseti(L, -2, ++k);
        cursor = starts[i];          /* the file's content is empty in buf */
    }
    lua_pushlstring(L, buf + cursor, len - cursor);
    lua_rawseti(L, -2, ++k);
    push_content_type(L, bnd, bl);
    ocr_push_uint(L, total);
    return 3;
}
