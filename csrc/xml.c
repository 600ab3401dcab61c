/* ocr.core.xml_decode: XML (COS/CI response bodies) to a Lua table, via expat.
 *
 * The table is built directly in the expat callbacks. Open elements are frames: a C part (text
 * offsets, in a growable array) and a Lua part kept in a work table W, three integer keys per
 * depth d: W[3d+1] the element's name, W[3d+2] its node table (nil until one is needed),
 * W[3d+3] the set of its child names that have become arrays (nil until one has). Frame 0 is
 * the wrapper { [rootname] = value }. Text goes into one shared buffer used as a stack: an
 * element's text starts where its parent's ended and is cut off again when the element closes.
 *
 * No Lua error may leave an expat callback: besides skipping expat's own cleanup, the expat we
 * build against counts handler depth and makes XML_ParserFree a silent no-op while it is non-zero,
 * so a longjmp out of a handler leaks the whole parser. Every callback that touches Lua therefore
 * does so inside lua_pcall, and an error there (out of memory) stops the parser with a message.
 * The parser and both buffers still live in a userdata with __gc, for errors raised elsewhere.
 *
 * DOCTYPE is refused outright: without a DTD there are no entity declarations, so neither
 * entity expansion bombs nor external entities can exist. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <expat.h>
#include "ocr.h"
#include "buffer.h"
#include "args.h"

#define XML_MT            "ocr.xml.parser"
#define XML_DEFAULT_DEPTH 64
#define XML_MAX_DEPTH     100000
#define XML_DEFAULT_SIZE  16777216   /* 16 MiB */
#define XML_ARRAYS_KEY    0          /* W[0] holds opts.arrays (or nil) */

enum { SLOT_NAME = 1, SLOT_NODE = 2, SLOT_ARRAYS = 3 };

typedef struct {
    size_t text_start;   /* where this element's text begins in the shared text buffer */
    size_t run_start;    /* where the text since the last tag begins (dropped if blank) */
    int has_children;
} xml_frame;

typedef struct {
    XML_Parser parser;
    lua_State *L;
    ocr_buffer text;
    ocr_buffer frames;   /* xml_frame[depth + 1] */
    int depth;           /* open elements */
    int max_depth;
    int on_start;        /* stack indices of the protected callback closures */
    int on_end;
    const XML_Char *name;    /* arguments of the expat event being handled */
    const XML_Char **atts;
    int failed;          /* parsing was stopped; msg holds why */
    char msg[160];
} xml_state;

/* Idempotent: called as soon as parsing ends, and again (harmlessly) by __gc. */
static void xml_release(xml_state *st) {
    if (st->parser != NULL) {
        XML_ParserFree(st->parser);
        st->parser = NULL;
    }
    ocr_buffer_free(&st->text);
    ocr_buffer_free(&st->frames);
}

static int xml_gc(lua_State *L) {
    xml_release((xml_state *)luaL_checkudata(L, 1, XML_MT));
    return 0;
}

/* Records the first failure, prefixed with the current position, and stops the parser. */
static void xml_fail(xml_state *st, const char *what, const char *detail) {
    if (st->failed) return;
    st->failed = 1;
    snprintf(st->msg, sizeof st->msg, "%llu:%llu: %s%s",
             (unsigned long long)XML_GetCurrentLineNumber(st->parser),
             (unsigned long long)XML_GetCurrentColumnNumber(st->parser) + 1,
             what, detail ? detail : "");
    XML_StopParser(st->parser, XML_FALSE);
}

static xml_frame *xml_top(xml_state *st) {
    return (xml_frame *)st->frames.data + st->depth;
}

static int xml_is_blank(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return 0;
    return 1;
}

/* The text from offset off on. The buffer is NULL until the first text arrives, and NULL + 0
 * is undefined behaviour (clang's UBSan reports it), so that case points at "". */
static const char *xml_text_at(const xml_state *st, size_t off) {
    return st->text.data != NULL ? st->text.data + off : "";
}

/* Text between child tags that is only whitespace is layout, not content: forget it. */
static void xml_drop_blank_run(xml_state *st, xml_frame *f) {
    if (xml_is_blank(xml_text_at(st, f->run_start), st->text.len - f->run_start))
        st->text.len = f->run_start;
}

/* Runs the closure at stack index fn under lua_pcall: see the top of the file for why. */
static void xml_protected(xml_state *st, int fn) {
    lua_State *L = st->L;
    lua_pushvalue(L, fn);
    if (lua_pcall(L, 0, 0, 0) != 0) {
        /* lua_tostring could convert (allocate, raise) a non-string: only read strings. */
        const char *e = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        xml_fail(st, e ? e : "error while building the result", NULL);
        lua_pop(L, 1);
    }
}

/* The protected closures below have upvalues (W, state userdata). */
#define W_IDX lua_upvalueindex(1)

static xml_state *xml_upstate(lua_State *L) {
    return (xml_state *)lua_touserdata(L, lua_upvalueindex(2));
}

/* Pushes W[3d+slot]. */
static void xml_get(lua_State *L, int depth, int slot) {
    lua_rawgeti(L, W_IDX, 3 * depth + slot);
}

/* Pops the top value into W[3d+slot]. */
static void xml_set(lua_State *L, int depth, int slot) {
    lua_rawseti(L, W_IDX, 3 * depth + slot);
}

/* Pushes the table in W[3d+slot], creating it on first use. */
static void xml_get_table(lua_State *L, int depth, int slot) {
    xml_get(L, depth, slot);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        xml_set(L, depth, slot);
    }
}

/* Pushes the node table of the element at `depth`, creating it on first use. */
static void xml_push_node(lua_State *L, int depth) {
    xml_get_table(L, depth, SLOT_NODE);
}

/* Protected: opens the Lua part of frame st->depth (already counted) for st->name/st->atts. */
static int xml_p_start(lua_State *L) {
    xml_state *st = xml_upstate(L);
    const XML_Char **atts = st->atts;
    lua_pushstring(L, st->name);
    xml_set(L, st->depth, SLOT_NAME);
    if (atts[0] != NULL) {
        lua_newtable(L);            /* node */
        lua_newtable(L);            /* node._attr */
        for (; atts[0] != NULL; atts += 2) {
            lua_pushstring(L, atts[1]);
            lua_setfield(L, -2, atts[0]);
        }
        lua_setfield(L, -2, "_attr");
    } else {
        lua_pushnil(L);
    }
    xml_set(L, st->depth, SLOT_NODE);
    lua_pushnil(L);
    xml_set(L, st->depth, SLOT_ARRAYS);
    return 0;
}

static void XMLCALL xml_start(void *ud, const XML_Char *name, const XML_Char **atts) {
    xml_state *st = (xml_state *)ud;
    xml_frame fr, *parent;
    if (st->failed) return;
    if (st->depth >= st->max_depth) {
        char n[32];
        snprintf(n, sizeof n, "%d", st->max_depth);
        xml_fail(st, "nesting deeper than ", n);
        return;
    }
    if (strcmp(name, "_attr") == 0 || strcmp(name, "_text") == 0) {
        xml_fail(st, "reserved element name ", name);
        return;
    }
    fr.text_start = fr.run_start = st->text.len;
    fr.has_children = 0;
    if (ocr_buffer_append(&st->frames, &fr, sizeof fr) != OCR_BUF_OK) {
        xml_fail(st, "out of memory", NULL);
        return;
    }
    parent = xml_top(st);   /* frames.data may have moved: take pointers only now */
    if (st->depth > 0) xml_drop_blank_run(st, parent);
    parent->has_children = 1;
    st->depth++;
    xml_top(st)->text_start = xml_top(st)->run_start = st->text.len;
    st->name = name;
    st->atts = atts;
    xml_protected(st, st->on_start);
}

static void XMLCALL xml_chars(void *ud, const XML_Char *s, int len) {
    xml_state *st = (xml_state *)ud;
    int rc;
    if (st->failed || st->depth == 0 || len <= 0) return;
    rc = ocr_buffer_append(&st->text, s, (size_t)len);
    if (rc == OCR_BUF_NOMEM) xml_fail(st, "out of memory", NULL);
    else if (rc != OCR_BUF_OK) xml_fail(st, "text larger than max_size", NULL);
}

/* Pushes the finished value of the top element: its text, or its node table. */
static void xml_push_value(lua_State *L, xml_state *st) {
    xml_frame *f = xml_top(st);
    int is_leaf;
    xml_get(L, st->depth, SLOT_NODE);
    is_leaf = lua_isnil(L, -1) && !f->has_children;
    lua_pop(L, 1);
    if (is_leaf) {
        lua_pushlstring(L, xml_text_at(st, f->text_start), st->text.len - f->text_start);
        return;
    }
    xml_push_node(L, st->depth);
    if (f->has_children) xml_drop_blank_run(st, f);
    if (st->text.len > f->text_start) {
        lua_pushlstring(L, st->text.data + f->text_start, st->text.len - f->text_start);
        lua_setfield(L, -2, "_text");
    }
}

/* Pops the table (or nil) on top of the stack and returns whether it maps the name at stack
 * index `key` to a true value. Read raw, so a caller's metamethods never run inside the parser. */
static int xml_pop_flag(lua_State *L, int key) {
    int flag = 0;
    if (!lua_isnil(L, -1)) {
        lua_pushvalue(L, key);
        lua_rawget(L, -2);
        flag = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return flag;
}

/* Is the name at `key` forced to be an array by opts.arrays? */
static int xml_forced_array(lua_State *L, int key) {
    lua_rawgeti(L, W_IDX, XML_ARRAYS_KEY);
    return xml_pop_flag(L, key);
}

/* Has the name at `key` already become an array in the node of the element at `depth`? */
static int xml_known_array(lua_State *L, int depth, int key) {
    xml_get(L, depth, SLOT_ARRAYS);
    return xml_pop_flag(L, key);
}

static void xml_mark_array(lua_State *L, int depth, int key) {
    xml_get_table(L, depth, SLOT_ARRAYS);
    lua_pushvalue(L, key);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/* Stores `value` under the name at `key` in the node of the element at `depth`: the first
 * occurrence as a plain value, a repeated (or forced) name as an array in document order. */
static void xml_store(lua_State *L, int depth, int key, int value) {
    int forced = xml_forced_array(L, key);
    int node, existing;
    xml_push_node(L, depth);
    node = lua_gettop(L);
    lua_pushvalue(L, key);
    lua_rawget(L, node);
    existing = lua_gettop(L);
    lua_pushvalue(L, key);
    if (lua_isnil(L, existing)) {
        if (forced) {
            lua_createtable(L, 1, 0);
            lua_pushvalue(L, value);
            lua_rawseti(L, -2, 1);
        } else {
            lua_pushvalue(L, value);
        }
        lua_rawset(L, node);
    } else if (forced || xml_known_array(L, depth, key)) {
        lua_pop(L, 1);
        lua_pushvalue(L, value);
        lua_rawseti(L, existing, (int)lua_rawlen(L, existing) + 1);
    } else {
        /* Second occurrence: { first, second }, and remember the name is now an array. */
        lua_createtable(L, 2, 0);
        lua_pushvalue(L, existing);
        lua_rawseti(L, -2, 1);
        lua_pushvalue(L, value);
        lua_rawseti(L, -2, 2);
        lua_rawset(L, node);
        xml_mark_array(L, depth, key);
    }
    lua_settop(L, node - 1);
}

/* Protected: closes the Lua part of frame st->depth, storing its value in its parent. */
static int xml_p_end(lua_State *L) {
    xml_state *st = xml_upstate(L);
    int d = st->depth;
    xml_get(L, d, SLOT_NAME);       /* index 1 */
    xml_push_value(L, st);          /* index 2 */
    xml_store(L, d - 1, 1, 2);
    /* Release this depth's slots: the value now lives in the parent. */
    lua_pushnil(L);
    xml_set(L, d, SLOT_NODE);
    lua_pushnil(L);
    xml_set(L, d, SLOT_ARRAYS);
    return 0;
}

static void XMLCALL xml_end(void *ud, const XML_Char *name) {
    xml_state *st = (xml_state *)ud;
    if (st->failed || st->depth == 0) return;
    xml_protected(st, st->on_end);
    if (st->failed) return;
    st->text.len = xml_top(st)->text_start;
    st->frames.len -= sizeof(xml_frame);
    st->depth--;
    xml_top(st)->run_start = st->text.len;
}

static void XMLCALL xml_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                                const XML_Char *pubid, int has_internal_subset) {
    xml_fail((xml_state *)ud, "DOCTYPE is not allowed", NULL);
}

static void XMLCALL xml_entity_decl(void *ud, const XML_Char *name, int is_param,
                                    const XML_Char *value, int value_len, const XML_Char *base,
                                    const XML_Char *sysid, const XML_Char *pubid,
                                    const XML_Char *notation) {
    xml_fail((xml_state *)ud, "entity declarations are not allowed", NULL);
}

static int XMLCALL xml_external_entity(XML_Parser p, const XML_Char *context,
                                       const XML_Char *base, const XML_Char *sysid,
                                       const XML_Char *pubid) {
    xml_fail((xml_state *)XML_GetUserData(p), "external entities are not allowed", NULL);
    return XML_STATUS_ERROR;
}

/* Creates the state userdata (with __gc) and the parser; raises only on out of memory. */
static xml_state *xml_new_state(lua_State *L, size_t len, int max_depth) {
    static const luaL_Reg xml_meta[] = { { "__gc", xml_gc }, { NULL, NULL } };
    xml_state *st = (xml_state *)lua_newuserdata(L, sizeof *st);
    xml_frame root = { 0, 0, 0 };
    memset(st, 0, sizeof *st);
    /* Decoded text is at most 3 bytes of UTF-8 per input byte (ISO-8859-1 doubles, UTF-16
     * BMP characters grow 2 -> 3): a hard bound that is still proportional to the input. */
    ocr_buffer_init(&st->text, len <= (SIZE_MAX - 1) / 3 ? 3 * len + 1 : SIZE_MAX);
    ocr_buffer_init(&st->frames, 0);            /* bounded by max_depth instead */
    ocr_push_class(L, XML_MT, xml_meta);
    lua_setmetatable(L, -2);
    st->L = L;
    st->max_depth = max_depth;
    if (ocr_buffer_append(&st->frames, &root, sizeof root) != OCR_BUF_OK)
        luaL_error(L, "xml_decode: out of memory");
    st->parser = XML_ParserCreate(NULL);
    if (st->parser == NULL) luaL_error(L, "xml_decode: out of memory");
    XML_SetUserData(st->parser, st);
    XML_SetElementHandler(st->parser, xml_start, xml_end);
    XML_SetCharacterDataHandler(st->parser, xml_chars);
    XML_SetStartDoctypeDeclHandler(st->parser, xml_doctype);
    XML_SetEntityDeclHandler(st->parser, xml_entity_decl);
    XML_SetExternalEntityRefHandler(st->parser, xml_external_entity);
    XML_SetParamEntityParsing(st->parser, XML_PARAM_ENTITY_PARSING_NEVER);
    return st;
}

/* xml_decode(s[, opts]) -> { [rootname] = value } | nil, "line:col: message" */
int ocr_core_xml_decode(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    int opts = lua_isnoneornil(L, 2) ? 0 : 2;
    lua_Integer max_depth, max_size;
    xml_state *st;
    enum XML_Status status;

    if (opts) luaL_checktype(L, 2, LUA_TTABLE);
    max_depth = ocr_opt_int(L, opts, "max_depth", XML_DEFAULT_DEPTH, 1, XML_MAX_DEPTH, "xml_decode");
    max_size = ocr_opt_int(L, opts, "max_size", XML_DEFAULT_SIZE, 0, INT_MAX, "xml_decode");
    lua_settop(L, 2);
    if (opts) lua_getfield(L, opts, "arrays");
    else lua_pushnil(L);
    if (!lua_isnil(L, 3) && !lua_istable(L, 3))
        luaL_error(L, "bad option 'arrays' to 'xml_decode' (table expected, got %s)",
                   luaL_typename(L, 3));
    if (len > (size_t)max_size) {
        lua_pushnil(L);
        lua_pushfstring(L, "document larger than max_size (%d bytes)", (int)max_size);
        return 2;
    }

    lua_newtable(L);                        /* 4: W */
    lua_pushvalue(L, 3);
    lua_rawseti(L, 4, XML_ARRAYS_KEY);
    lua_newtable(L);                        /* frame 0's node: the wrapper */
    lua_rawseti(L, 4, SLOT_NODE);
    st = xml_new_state(L, len, (int)max_depth);   /* 5 */
    lua_pushvalue(L, 4);
    lua_pushvalue(L, 5);
    lua_pushcclosure(L, xml_p_start, 2);    /* 6 */
    lua_pushvalue(L, 4);
    lua_pushvalue(L, 5);
    lua_pushcclosure(L, xml_p_end, 2);      /* 7 */
    st->on_start = 6;
    st->on_end = 7;
    /* The callbacks push the closure and the error object: reserve that here, where a failure
     * may still raise. */
    luaL_checkstack(L, 4, "xml_decode");

    status = XML_Parse(st->parser, s, (int)len, XML_TRUE);
    if (status == XML_STATUS_OK && !st->failed) {
        xml_release(st);
        lua_rawgeti(L, 4, SLOT_NODE);
        return 1;
    }
    if (!st->failed)
        snprintf(st->msg, sizeof st->msg, "%llu:%llu: %s",
                 (unsigned long long)XML_GetCurrentLineNumber(st->parser),
                 (unsigned long long)XML_GetCurrentColumnNumber(st->parser) + 1,
                 XML_ErrorString(XML_GetErrorCode(st->parser)));
    xml_release(st);
    lua_pushnil(L);
    lua_pushstring(L, st->msg);
    return 2;
}
