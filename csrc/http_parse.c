/* ocr.core.http_response: an incremental HTTP/1.1 response parser over http_parser, with no I/O
 * of its own (sans-I/O). The caller reads bytes from whatever socket it has (an nginx cosocket,
 * LuaSocket, a test's strings) and feeds them in; each feed answers with the body bytes it
 * produced (de-chunked) and how far the response is: "head", "body" or "done".
 *
 * http_parser calls back from inside http_parser_execute, so no callback touches Lua: a Lua
 * error raised there would jump over the parser's frames and leave it halfway through a state.
 * The callbacks only append to C buffers owned by the userdata (freed by __gc) and record a
 * failure as a message, which feed() returns once execute has returned. Two events need more
 * than that, so their callbacks pause the parser and execute returns exactly there:
 * - the end of a head: its size is checked against max_header_size to the byte, and an interim
 *   1xx response is told from the final one;
 * - the end of a message: the bytes after it are not parsed as a next response (they are
 *   counted for extra()), and an interim response's end restarts the parser for the next head.
 *
 * Limits: the head counts every byte before the final response's body -- status lines, fields,
 * line ends, and interim 1xx heads, so that an endless stream of "100 Continue" is bounded too.
 * http_parser is given no byte of a head past it (stored bytes never exceed it), and it is
 * checked again in the callbacks and when the head ends. http_parser's own limit on one head
 * or trailer section (HTTP_MAX_HEADER_SIZE, 80 KiB in Debian's build) applies as well: it is a
 * process-wide setting, shared with anything else in the process that uses the library, so it
 * is left alone.
 * Trailers of a chunked body are parsed and dropped.
 *
 * NUL and other control characters in a field are malformed. http_parser refuses them in names
 * (tokens only) and in values, except for a value's first byte (and a folded line's), which it
 * lets through unchecked: the value callback checks every byte of a line once it has ended. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <http_parser.h>
#include "ocr.h"
#include "buffer.h"
#include "args.h"

#define HP_MT                   "ocr.http_response"
#define HP_DEFAULT_HEADER_SIZE  65536
#define HP_DEFAULT_HEADERS      100

enum { PH_HEAD, PH_BODY, PH_DONE, PH_FAILED };   /* where the response is */
enum { EV_NONE, EV_HEADERS, EV_COMPLETE };       /* why the parser paused */

typedef struct {
    size_t name_off, name_len;    /* into hp_state.text */
    size_t value_off, value_len;
    int next;                     /* head(): the next field of the same name, or -1 */
    int first;                    /* head(): the first field of its name */
} hp_field;

typedef struct {
    http_parser parser;
    int phase;
    int event;
    int head_only;                /* the response answers a HEAD request: no body */
    unsigned long long max_header_size;
    int max_headers;
    int nomem;                    /* a buffer could not grow: feed() raises */

    /* the head being read (reset after an interim response) and the final one's facts */
    int head_done;
    int in_name;                  /* the last field callback was a name's */
    int nfields;
    ocr_buffer fields;            /* hp_field[nfields] */
    ocr_buffer text;              /* lowercase names and values */
    int status;
    int keep_alive;
    int has_length;
    unsigned long long content_length;

    /* the stream: bytes accepted so far, and the current execute call's start, end and offset */
    unsigned long long fed;
    unsigned long long extra;     /* bytes fed after the response ended */
    const char *chunk;
    const char *chunk_end;
    unsigned long long chunk_at;

    /* the line of a value being read (a folded value has more than one): where it begins in
     * text and in the stream, and whether the end of the bytes given to execute cut it */
    size_t line_off;
    unsigned long long line_at;
    int line_open;

    /* the current feed's body: a pointer into the fed string while it is one piece, copied
     * into `body` once a second piece (another chunk) arrives */
    const char *span;
    size_t spanl;
    ocr_buffer body;

    char msg[160];                /* why it failed (PH_FAILED) */
} hp_state;

/* ---- callbacks (no Lua here) ------------------------------------------------------------ */

/* Records the first failure; the non-zero return makes http_parser stop. */
static int hp_fail(hp_state *r, const char *fmt, unsigned long long n) {
    if (r->phase != PH_FAILED) {
        snprintf(r->msg, sizeof r->msg, fmt, n);
        r->phase = PH_FAILED;
    }
    return -1;
}

/* The stream offset just past [at, at + n): every byte up to there belongs to the head. */
static int head_over(const hp_state *r, const char *at, size_t n) {
    return r->chunk_at + (unsigned long long)(at - r->chunk) + n > r->max_header_size;
}

static int over_size(hp_state *r) {
    return hp_fail(r, "response headers larger than %llu bytes", r->max_header_size);
}

/* A buffer could not grow: feed() raises (and the parser stays failed). */
static int out_of_memory(hp_state *r) {
    r->nomem = 1;
    return hp_fail(r, "http_response: out of memory", 0);
}

/* Appends n bytes of a name (lowercased) or value to the text buffer. */
static int add_text(hp_state *r, const char *at, size_t n, int lower) {
    size_t i;
    char *d;
    if (ocr_buffer_reserve(&r->text, n) != OCR_BUF_OK) return out_of_memory(r);
    d = r->text.data + r->text.len;
    for (i = 0; i < n; i++)
        d[i] = (char)(lower && at[i] >= 'A' && at[i] <= 'Z' ? at[i] + ('a' - 'A') : at[i]);
    r->text.len += n;
    return 0;
}

static hp_field *last_field(hp_state *r) {
    return (hp_field *)r->fields.data + (r->nfields - 1);
}

/* http_parser calls a data callback when a name or value ends, and also with the piece of one
 * that the end of the bytes given to execute cut off (the rest comes with the next feed). The
 * checks below are made once the name or value line has ended, on all of it: a piece cut off
 * is stored and not judged. A failure is so found at the same byte however the stream was
 * cut; judging a piece would report it before a malformed byte that http_parser finds later in
 * the same name or value when the stream is cut there, and not when it is fed whole. */
static int cut_off(const hp_state *r, const char *at, size_t n) {
    return at + n == r->chunk_end;
}

/* A name may come in pieces (one per feed it spans); a name after a value starts a field,
 * counted against max_headers once the name has ended. */
static int on_header_field(http_parser *hp, const char *at, size_t n) {
    hp_state *r = hp->data;
    if (r->head_done) return 0;                          /* a trailer: dropped */
    if (head_over(r, at, n)) return over_size(r);
    if (!r->in_name) {
        hp_field f;
        memset(&f, 0, sizeof f);
        f.name_off = r->text.len;
        if (ocr_buffer_append(&r->fields, &f, sizeof f) != OCR_BUF_OK) return out_of_memory(r);
        r->nfields++;
        r->in_name = 1;
    }
    last_field(r)->name_len += n;
    if (add_text(r, at, n, 1) != 0) return -1;
    if (!cut_off(r, at, n) && r->nfields > r->max_headers)
        return hp_fail(r, "more than %llu response headers", (unsigned long long)r->max_headers);
    return 0;
}

/* The index of the first byte outside http_parser's IS_HEADER_CHAR (visible characters,
 * obs-text, space and HTAB), or n. */
static size_t bad_value_byte(const char *at, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)at[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) break;
    }
    return i;
}

static int on_header_value(http_parser *hp, const char *at, size_t n) {
    hp_state *r = hp->data;
    hp_field *f;
    size_t bad, linel;
    if (r->head_done || r->nfields == 0) return 0;
    if (head_over(r, at, n)) return over_size(r);
    f = last_field(r);
    if (r->in_name) {
        f->value_off = r->text.len;
        r->in_name = 0;
    }
    if (!r->line_open) {
        r->line_off = r->text.len;
        r->line_at = r->chunk_at + (unsigned long long)(at - r->chunk);
    }
    f->value_len += n;
    if (add_text(r, at, n, 0) != 0) return -1;
    r->line_open = cut_off(r, at, n);
    linel = r->text.len - r->line_off;
    if (!r->line_open && linel > 0 && (bad = bad_value_byte(r->text.data + r->line_off, linel)) < linel)
        return hp_fail(r, "malformed HTTP response: invalid character in header (at byte %llu)",
                       r->line_at + (unsigned long long)bad);
    return 0;
}

/* RFC 9110 §6.4.1: 1xx, 204 and 304 responses never have content, whatever their headers say,
 * nor does the answer to HEAD; returning 1 tells http_parser so (on its own it knows 204 and
 * 304 only when they carry no Content-Length). */
static int on_headers_complete(http_parser *hp) {
    hp_state *r = hp->data;
    unsigned status = hp->status_code;
    r->event = EV_HEADERS;
    http_parser_pause(hp, 1);
    return (r->head_only || status / 100 == 1 || status == 204 || status == 304) ? 1 : 0;
}

static int on_body(http_parser *hp, const char *at, size_t n) {
    hp_state *r = hp->data;
    if (r->span == NULL && r->body.len == 0) {
        r->span = at;
        r->spanl = n;
        return 0;
    }
    if ((r->span != NULL && ocr_buffer_append(&r->body, r->span, r->spanl) != OCR_BUF_OK) ||
        ocr_buffer_append(&r->body, at, n) != OCR_BUF_OK)
        return out_of_memory(r);
    r->span = NULL;
    return 0;
}

static int on_message_complete(http_parser *hp) {
    ((hp_state *)hp->data)->event = EV_COMPLETE;
    http_parser_pause(hp, 1);
    return 0;
}

/* The reason phrase (on_status) is not kept; chunk boundaries need nothing. */
static const http_parser_settings settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- driving the parser --------------------------------------------------------------- */

static void start_head(hp_state *r) {
    http_parser_init(&r->parser, HTTP_RESPONSE);   /* keeps parser.data */
    r->in_name = 0;
    r->line_open = 0;
    r->nfields = 0;
    r->fields.len = 0;
    r->text.len = 0;
}

/* Handles the pause execute returned at; `at` is the stream offset execute stopped at. */
static void on_pause(hp_state *r, unsigned long long at) {
    http_parser *hp = &r->parser;
    int event = r->event;
    r->event = EV_NONE;
    http_parser_pause(hp, 0);
    if (event == EV_HEADERS) {
        /* execute stopped on the head's last LF, which it has not consumed yet */
        if (at + 1 > r->max_header_size) {
            over_size(r);
            return;
        }
        if (hp->status_code / 100 == 1 && hp->status_code != 101) return;   /* interim */
        r->head_done = 1;
        r->phase = PH_BODY;
        r->status = hp->status_code;
        /* final already: the framing is known, and a body skipped above is flagged by now */
        r->keep_alive = http_should_keep_alive(hp);
        r->has_length = (hp->flags & F_CONTENTLENGTH) && !(hp->flags & F_CHUNKED);
        r->content_length = r->has_length ? hp->content_length : 0;
    } else if (event == EV_COMPLETE) {
        if (!r->head_done) start_head(r);   /* an interim response ended: the next head follows */
        else r->phase = PH_DONE;
    }
}

/* Runs the parser over s[0, len); on return r->phase says how far the response got. Execute
 * never gets 0 bytes here: to http_parser that means the connection closed (finish()).
 * While in the head, the parser never gets a byte past max_header_size: the head is then too
 * large whatever that byte is, however the stream was cut (else a malformed byte after the
 * limit was reported instead when it came in the same feed as the limit, and not otherwise). */
static void run(hp_state *r, const char *s, size_t len) {
    size_t pos = 0;
    while (pos < len && r->phase != PH_DONE && r->phase != PH_FAILED) {
        size_t n, room = len - pos;
        enum http_errno err;
        if (r->phase == PH_HEAD) {
            if (r->fed >= r->max_header_size) break;
            if (room > r->max_header_size - r->fed) room = (size_t)(r->max_header_size - r->fed);
        }
        r->chunk = s + pos;
        r->chunk_end = s + pos + room;
        r->chunk_at = r->fed;
        n = http_parser_execute(&r->parser, &settings, s + pos, room);
        pos += n;
        r->fed += n;
        err = HTTP_PARSER_ERRNO(&r->parser);
        if (r->phase == PH_FAILED) return;                      /* a callback's own message */
        if (err == HPE_PAUSED) {
            on_pause(r, r->fed);
        } else if (err != HPE_OK) {
            snprintf(r->msg, sizeof r->msg, "malformed HTTP response: %s (at byte %llu)",
                     http_errno_description(err), r->fed);
            r->phase = PH_FAILED;
            return;
        }
    }
    /* every byte up to the limit read and the head still open (whitespace, folded lines and
     * the like are stored nowhere but belong to the head too): it is over the limit */
    if (r->phase == PH_HEAD && r->fed >= r->max_header_size) over_size(r);
    if (r->phase == PH_DONE) r->extra += len - pos;
}

/* ---- Lua side -------------------------------------------------------------------------- */

static hp_state *check_parser(lua_State *L) {
    return (hp_state *)luaL_checkudata(L, 1, HP_MT);
}

static int push_failure(lua_State *L, const hp_state *r) {
    lua_pushnil(L);
    lua_pushstring(L, r->phase == PH_DONE ? "parser already finished" : r->msg);
    return 2;
}

/* The feed's body and the phase; the body buffer is emptied for the next feed. */
static int push_progress(lua_State *L, hp_state *r) {
    static const char *const names[] = { "head", "body", "done" };
    if (r->span != NULL) lua_pushlstring(L, r->span, r->spanl);
    else if (r->body.len > 0) lua_pushlstring(L, r->body.data, r->body.len);
    else lua_pushliteral(L, "");
    r->span = NULL;
    r->body.len = 0;
    if (r->phase == PH_DONE) ocr_buffer_free(&r->body);   /* no more body: give its memory back */
    lua_pushstring(L, names[r->phase]);
    return 2;
}

/* A buffer that could not grow leaves the parser failed and raises, as running out of memory
 * anywhere in Lua does. */
static void check_memory(lua_State *L, hp_state *r) {
    if (r->nomem) {
        r->span = NULL;
        r->body.len = 0;
        luaL_error(L, "%s", r->msg);
    }
}

/* p:feed(bytes) -> body, "head"|"body"|"done" | nil, message */
static int hp_feed(lua_State *L) {
    hp_state *r = check_parser(L);
    size_t len;
    const char *s;
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_argerror(L, 2, lua_pushfstring(L, "string expected, got %s", luaL_typename(L, 2)));
    s = lua_tolstring(L, 2, &len);
    if (r->phase == PH_DONE) {
        r->extra += len;
        return push_failure(L, r);
    }
    if (r->phase == PH_FAILED) return push_failure(L, r);
    run(r, s, len);
    check_memory(L, r);
    if (r->phase == PH_FAILED) {
        r->span = NULL;
        r->body.len = 0;
        return push_failure(L, r);
    }
    return push_progress(L, r);
}

/* p:finish() -> "", "done" | nil, message: the peer closed the connection. */
static int hp_finish(lua_State *L) {
    hp_state *r = check_parser(L);
    if (r->phase == PH_FAILED) return push_failure(L, r);
    if (r->phase != PH_DONE) {
        r->chunk = r->chunk_end = "";
        r->chunk_at = r->fed;
        http_parser_execute(&r->parser, &settings, "", 0);   /* completes a body read to EOF */
        if (HTTP_PARSER_ERRNO(&r->parser) == HPE_PAUSED) on_pause(r, r->fed);
        if (r->phase != PH_DONE) {
            snprintf(r->msg, sizeof r->msg, "connection closed before the response was complete");
            r->phase = PH_FAILED;
            return push_failure(L, r);
        }
    }
    return push_progress(L, r);
}

static void push_text(lua_State *L, const hp_state *r, size_t off, size_t n) {
    if (n == 0) lua_pushliteral(L, "");
    else lua_pushlstring(L, r->text.data + off, n);
}

/* A value without the spaces and tabs that may end a field line (RFC 9110 §5.5: not part of
 * the value; http_parser drops only the leading ones). */
static void push_value(lua_State *L, const hp_state *r, const hp_field *f) {
    size_t n = f->value_len;
    while (n > 0 && (r->text.data[f->value_off + n - 1] == ' ' ||
                     r->text.data[f->value_off + n - 1] == '\t'))
        n--;
    push_text(L, r, f->value_off, n);
}

/* {lowercase name = value}, the values of a repeated name joined with ", " in order. Fields of
 * one name are linked first (a table maps each name to its latest field), so joining is linear
 * however many duplicates there are. */
static void push_headers(lua_State *L, hp_state *r) {
    hp_field *f = (hp_field *)r->fields.data;
    int i, j, t;
    lua_createtable(L, 0, r->nfields);
    t = lua_gettop(L);
    for (i = 0; i < r->nfields; i++) {
        f[i].next = -1;
        f[i].first = 1;
        push_text(L, r, f[i].name_off, f[i].name_len);
        lua_pushvalue(L, -1);
        lua_rawget(L, t);
        if (lua_type(L, -1) == LUA_TNUMBER) {
            f[lua_tointeger(L, -1)].next = i;
            f[i].first = 0;
        }
        lua_pop(L, 1);
        lua_pushinteger(L, i);
        lua_rawset(L, t);
    }
    for (i = 0; i < r->nfields; i++) {
        if (!f[i].first) continue;
        push_text(L, r, f[i].name_off, f[i].name_len);
        if (f[i].next < 0) {
            push_value(L, r, &f[i]);
        } else {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (j = i; j >= 0; j = f[j].next) {
                if (j != i) luaL_addlstring(&b, ", ", 2);
                push_value(L, r, &f[j]);
                luaL_addvalue(&b);
            }
            luaL_pushresult(&b);
        }
        lua_rawset(L, t);
    }
}

/* p:head() -> status, headers, keep_alive | nil (the head is not complete) */
static int hp_head(lua_State *L) {
    hp_state *r = check_parser(L);
    if (!r->head_done) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, r->status);
    push_headers(L, r);
    lua_pushboolean(L, r->keep_alive);
    return 3;
}

/* p:extra() -> bytes fed after the response ended (the connection must not be reused) */
static int hp_extra(lua_State *L) {
    ocr_push_uint(L, check_parser(L)->extra);
    return 1;
}

/* p:content_length() -> the declared Content-Length, or nil (chunked, read to EOF, no head) */
static int hp_content_length(lua_State *L) {
    hp_state *r = check_parser(L);
    if (r->head_done && r->has_length) ocr_push_uint(L, r->content_length);
    else lua_pushnil(L);
    return 1;
}

static int hp_gc(lua_State *L) {
    hp_state *r = check_parser(L);
    ocr_buffer_free(&r->fields);
    ocr_buffer_free(&r->text);
    ocr_buffer_free(&r->body);
    return 0;
}

static int hp_tostring(lua_State *L) {
    static const char *const names[] = { "head", "body", "done", "failed" };
    lua_pushfstring(L, "ocr.http_response (%s)", names[check_parser(L)->phase]);
    return 1;
}

static void push_metatable(lua_State *L) {
    static const luaL_Reg funcs[] = {
        { "feed", hp_feed }, { "finish", hp_finish }, { "head", hp_head }, { "extra", hp_extra },
        { "content_length", hp_content_length },
        { "__gc", hp_gc }, { "__tostring", hp_tostring }, { NULL, NULL }
    };
    ocr_push_class(L, HP_MT, funcs);
}

/* A misspelt option would silently leave a limit at its default. */
static void check_options(lua_State *L, int opts) {
    static const char *const known[] = { "head", "max_header_size", "max_headers", NULL };
    unsigned present;
    if (!ocr_table_keys(L, opts, known, &present))
        luaL_error(L, "bad option to 'http_response' (unknown option '%s')",
                   lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
}

/* http_response([opts]) -> parser; opts: head, max_header_size, max_headers */
int ocr_core_http_response(lua_State *L) {
    int opts = lua_isnoneornil(L, 1) ? 0 : 1, head_only = 0;
    lua_Integer max_size, max_headers;
    hp_state *r;
    if (opts) {
        luaL_checktype(L, 1, LUA_TTABLE);
        check_options(L, opts);
        lua_getfield(L, opts, "head");
        if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
            luaL_error(L, "bad option 'head' to 'http_response' (boolean expected, got %s)",
                       luaL_typename(L, -1));
        head_only = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    max_size = ocr_opt_int(L, opts, "max_header_size", HP_DEFAULT_HEADER_SIZE, 1, INT_MAX,
                           "http_response");
    max_headers = ocr_opt_int(L, opts, "max_headers", HP_DEFAULT_HEADERS, 0, INT_MAX,
                              "http_response");
    r = (hp_state *)lua_newuserdata(L, sizeof *r);
    memset(r, 0, sizeof *r);
    ocr_buffer_init(&r->fields, 0);   /* both bounded by max_header_size through the callbacks */
    ocr_buffer_init(&r->text, 0);
    ocr_buffer_init(&r->body, 0);     /* at most one feed's bytes */
    push_metatable(L);
    lua_setmetatable(L, -2);
    r->parser.data = r;
    start_head(r);
    r->phase = PH_HEAD;
    r->head_only = head_only;
    r->max_header_size = (unsigned long long)max_size;
    r->max_headers = (int)max_headers;
    return 1;
}
