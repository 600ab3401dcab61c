/* The image probe of ocr.tesseract (csrc/image_check.c), through its plain C API: no Lua here.
 * Input: max_pages = 1 + u8, then the image. What ocr.tesseract's _check_image(image, max_pages)
 * does, with its answers checked: a known status; on failure a message; a page count within
 * 0..max_pages; for a TIFF, each page's directory read again by ic_tiff_pages, which either
 * gives every page a size or says why not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "../csrc/image_check.h"

static void broken(const char *why, const char *msg) {
    fprintf(stderr, "fuzz: invariant broken: image_check: %s (%s)\n", why, msg);
    abort();
}

static void check_msg(ic_status st, const char *msg) {
    if (st != IC_OK && st != IC_INVALID && st != IC_TOO_LARGE && st != IC_UNSUPPORTED)
        broken("an unknown status", "");
    if (st != IC_OK && (memchr(msg, 0, 256) == NULL || msg[0] == 0))
        broken("a failure without a message", "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_input in = { data, size };
    int max_pages = 1 + (int)fz_u8(&in), pages = -1;
    char msg[256];
    ic_status st;
    /* the image in a buffer of its own size, so that ASan sees a read past its end */
    unsigned char *img = malloc(in.n ? in.n : 1);
    if (img == NULL) return 0;
    memcpy(img, in.p, in.n);
    memset(msg, 0x55, sizeof msg);
    st = ic_check(img, in.n, max_pages, &pages, msg, sizeof msg);
    check_msg(st, msg);
    if (st == IC_OK && (pages < 0 || pages > max_pages)) broken("a page count out of range", "");
    if (st == IC_OK && pages > 0) {
        ic_tiff_page *dirs = malloc((size_t)pages * sizeof *dirs);
        int i;
        if (dirs == NULL) abort();
        memset(msg, 0x55, sizeof msg);
        st = ic_tiff_pages(img, in.n, dirs, pages, msg, sizeof msg);
        if (st != IC_OK && st != IC_INVALID) broken("ic_tiff_pages: a status other than OK or INVALID", "");
        check_msg(st, msg);
        for (i = 0; st == IC_OK && i < pages; i++)
            if (dirs[i].width == 0 || dirs[i].height == 0 || dirs[i].offset >= in.n)
                broken("ic_tiff_pages: a page without a size or outside the image", "");
        free(dirs);
    }
    free(img);
    return 0;
}
