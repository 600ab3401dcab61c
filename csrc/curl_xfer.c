/* ocr.curl transfers: the lifetime of one ocr_xfer (see curl_xfer.h for who owns it when), and
 * the end of a save_to download: the temp file moved into place, or removed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "curl_xfer.h"

#define HEAD_LIMIT (1024 * 1024)         /* all header lines of one response */
#define KEEP_BUFFER (256 * 1024)         /* buffers up to this size serve the next request */

int ocr_xfer_holder_gc(lua_State *L) {
    ocr_xfer **h = luaL_checkudata(L, 1, OCR_CURL_HOLDER_MT);
    if (*h) ocr_xfer_destroy(*h);
    *h = NULL;
    return 0;
}

static ocr_xfer *xfer_alloc(void) {
    ocr_xfer *x = calloc(1, sizeof *x);
    if (x == NULL) return NULL;
    ocr_buffer_init(&x->head, HEAD_LIMIT);
    ocr_buffer_init(&x->body, 0);
    ocr_buffer_init(&x->form, 0);
    return x;
}

ocr_xfer *ocr_xfer_new(lua_State *L) {
    ocr_xfer **h = lua_newuserdata(L, sizeof *h);
    *h = NULL;
    luaL_setmetatable(L, OCR_CURL_HOLDER_MT);
    if ((*h = xfer_alloc()) == NULL) luaL_error(L, "ocr.curl: out of memory");
    return *h;
}

void ocr_xfer_release(lua_State *L, int idx, int keep) {
    ocr_xfer **h = luaL_checkudata(L, idx, OCR_CURL_HOLDER_MT);
    if (*h && !keep) ocr_xfer_destroy(*h);
    *h = NULL;
}

/* The parts of a transfer that libcurl may still read during the transfer. */
static void xfer_free_request(ocr_xfer *x) {
    x->form.len = 0;
    free(x->files);
    x->files = NULL;
    x->nfiles = 0;
    if (x->read_fp) fclose(x->read_fp);
    x->read_fp = NULL;
}

/* Everything one request used, but the handle and the response buffers. */
static void xfer_free_parts(ocr_xfer *x) {
    xfer_free_request(x);
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    if (x->save_fp) fclose(x->save_fp);
    x->save_fp = NULL;
    if (x->tmp_path && !x->saved) unlink(x->tmp_path);
    free(x->tmp_path);
    free(x->save_path);
    x->tmp_path = x->save_path = NULL;
}

void ocr_xfer_destroy(ocr_xfer *x) {
    if (x == NULL) return;
    xfer_free_parts(x);
    if (x->owns_easy && x->easy) curl_easy_cleanup(x->easy);
    x->easy = NULL;
    ocr_buffer_free(&x->head);
    ocr_buffer_free(&x->body);
    ocr_buffer_free(&x->form);
    free(x);
}

static void keep_buffer(ocr_buffer *b) {
    if (b->cap > KEEP_BUFFER) ocr_buffer_free(b);
    b->len = 0;
}

ocr_xfer *ocr_xfer_recycle(ocr_xfer *x) {
    ocr_buffer head, body, form;
    if (x == NULL) return xfer_alloc();
    xfer_free_parts(x);
    head = x->head;
    body = x->body;
    form = x->form;
    keep_buffer(&head);
    keep_buffer(&body);
    keep_buffer(&form);
    memset(x, 0, sizeof *x);
    x->head = head;
    x->body = body;
    x->form = form;
    return x;
}

void ocr_xfer_finalize(ocr_xfer *x, CURLcode code) {
    long status = 0;
    if (x->finalized) return;
    x->finalized = 1;
    x->code = code;
    xfer_free_request(x);
    if (x->save_fp == NULL) return;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (code == CURLE_OK && x->fail == OCR_FAIL_NONE && status >= 200 && status < 300) {
        /* Complete: make the bytes durable, then move them into place in one step. */
        if (fflush(x->save_fp) != 0 || fsync(fileno(x->save_fp)) != 0) x->io_errno = errno;
        if (fclose(x->save_fp) != 0 && x->io_errno == 0) x->io_errno = errno;
        x->save_fp = NULL;
        if (x->io_errno == 0 && rename(x->tmp_path, x->save_path) != 0) x->io_errno = errno;
        if (x->io_errno == 0) x->saved = 1;
        else x->fail = OCR_FAIL_IO;
    } else {
        fclose(x->save_fp);
        x->save_fp = NULL;
    }
    if (!x->saved) unlink(x->tmp_path);
    free(x->tmp_path);
    x->tmp_path = NULL;
}
