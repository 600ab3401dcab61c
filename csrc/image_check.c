/* Byte-level checks of encoded images (see image_check.h). Every length read from the data is
 * checked against what is left of it before it is used. libpng and libjpeg report a file cut
 * short on stderr before leptonica refuses it ("libpng error: read error", "Premature end of
 * JPEG file"); these walks refuse it first, quietly, saying what is wrong. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "image_check.h"

/* "II*\0" or "MM\0*" (classic), "II+\0" or "MM\0+" (BigTIFF). */
static int tiff_magic(const unsigned char *d, size_t len) {
    return len >= 4 && ((d[0] == 'I' && d[1] == 'I' && (d[2] == 42 || d[2] == 43) && d[3] == 0)
                        || (d[0] == 'M' && d[1] == 'M' && d[2] == 0 && (d[3] == 42 || d[3] == 43)));
}

static uint64_t read_uint(const unsigned char *p, int bytes, int little) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[little ? i : bytes - 1 - i] << (8 * i);
    return v;
}

/* Where a TIFF's fields are: classic TIFF has 2-byte entry counts, 12-byte entries and 4-byte
 * offsets; BigTIFF 8, 20 and 8. An entry is tag (2), type (2), count, value (an offset's size). */
typedef struct {
    int little;
    size_t count_size, entry_size, ptr_size, header;
} tiff_layout;

static tiff_layout layout_of(const unsigned char *d) {
    tiff_layout t;
    t.little = d[0] == 'I';
    int big = read_uint(d + 2, 2, t.little) == 43;
    t.count_size = big ? 8 : 2;
    t.entry_size = big ? 20 : 12;
    t.ptr_size = big ? 8 : 4;
    t.header = big ? 16 : 8;
    return t;
}

/* The number of entries of the directory at off, if it and the next-directory pointer after it
 * lie inside the data; -1 otherwise. */
static int64_t directory_entries(const unsigned char *d, size_t len, const tiff_layout *t,
                                 uint64_t off) {
    if (off > len || len - off < t->count_size) return -1;
    uint64_t entries = read_uint(d + off, (int)t->count_size, t->little);
    size_t room = len - (size_t)off - t->count_size;
    if (entries > room / t->entry_size || room - entries * t->entry_size < t->ptr_size) return -1;
    return (int64_t)entries;
}

static uint64_t next_directory(const unsigned char *d, const tiff_layout *t, uint64_t off,
                               int64_t entries) {
    return read_uint(d + off + t->count_size + (size_t)entries * t->entry_size, (int)t->ptr_size,
                     t->little);
}

/* Walks a TIFF's chain of page directories (classic TIFF and BigTIFF, either byte order) and
 * counts the pages. Done before any page is recognised, so that a damaged file fails at once
 * instead of after its readable pages, and never gives a result with pages left out. */
static ic_status tiff_page_count(const unsigned char *d, size_t len, int max_pages, int *pages,
                                 char *msg, size_t msglen) {
    tiff_layout t = layout_of(d);
    if (len < t.header) {
        snprintf(msg, msglen, "TIFF image is truncated: %zu bytes", len);
        return IC_INVALID;
    }
    uint64_t off = read_uint(d + t.header - t.ptr_size, (int)t.ptr_size, t.little);
    /* Distinct directories take at least count_size + ptr_size bytes each: a longer chain loops. */
    uint64_t n = 0, most = len / (t.count_size + t.ptr_size);
    while (off != 0) {
        int64_t entries = directory_entries(d, len, &t, off);
        if (entries < 0) goto truncated;
        if (++n > most) {
            snprintf(msg, msglen, "TIFF image is corrupt: its page directories loop");
            return IC_INVALID;
        }
        off = next_directory(d, &t, off, entries);
    }
    if (n == 0) {
        snprintf(msg, msglen, "TIFF image has no pages");
        return IC_INVALID;
    }
    if (n > (uint64_t)max_pages) {
        snprintf(msg, msglen, "TIFF image has %llu pages, over max_pages (%d)",
                 (unsigned long long)n, max_pages);
        return IC_TOO_LARGE;
    }
    *pages = (int)n;
    return IC_OK;
truncated:
    snprintf(msg, msglen, "TIFF image is truncated: the directory of page %llu lies past its end "
             "(%zu bytes)", (unsigned long long)n + 1, len);
    return IC_INVALID;
}

/* An entry's value when it is one SHORT, LONG or LONG8 (how a TIFF gives a size); 0 otherwise. */
static uint32_t entry_size_value(const unsigned char *e, const tiff_layout *t) {
    unsigned type = (unsigned)read_uint(e + 2, 2, t->little);
    uint64_t count = read_uint(e + 4, (int)t->ptr_size, t->little);
    const unsigned char *value = e + 4 + t->ptr_size;
    uint64_t v;
    if (count != 1) return 0;
    if (type == 3) v = read_uint(value, 2, t->little);
    else if (type == 4) v = read_uint(value, 4, t->little);
    else if (type == 16 && t->ptr_size == 8) v = read_uint(value, 8, t->little);
    else return 0;
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

ic_status ic_tiff_pages(const unsigned char *d, size_t len, ic_tiff_page *pages, int n,
                        char *msg, size_t msglen) {
    if (!tiff_magic(d, len) || len < layout_of(d).header) {
        snprintf(msg, msglen, "not a TIFF image");
        return IC_INVALID;
    }
    tiff_layout t = layout_of(d);
    uint64_t off = read_uint(d + t.header - t.ptr_size, (int)t.ptr_size, t.little);
    for (int i = 0; i < n; i++) {
        /* ic_check walked this chain; the bounds are checked again so this stands on its own */
        int64_t entries = off == 0 ? -1 : directory_entries(d, len, &t, off);
        if (entries < 0) {
            snprintf(msg, msglen, "TIFF image is truncated: the directory of page %d lies past "
                     "its end (%zu bytes)", i + 1, len);
            return IC_INVALID;
        }
        ic_tiff_page *pg = &pages[i];
        pg->offset = off;
        pg->width = pg->height = 0;
        for (int64_t k = 0; k < entries; k++) {
            const unsigned char *e = d + off + t.count_size + (size_t)k * t.entry_size;
            unsigned tag = (unsigned)read_uint(e, 2, t.little);
            if (tag == 256) pg->width = entry_size_value(e, &t);           /* ImageWidth */
            else if (tag == 257) pg->height = entry_size_value(e, &t);     /* ImageLength */
        }
        if (pg->width == 0 || pg->height == 0) {
            snprintf(msg, msglen, "TIFF image is corrupt: page %d has no image size in its "
                     "directory", i + 1);
            return IC_INVALID;
        }
        off = next_directory(d, &t, off, entries);
    }
    return IC_OK;
}

/* PNG: chunks (length, type, data, CRC) walked to IEND. */
static ic_status png_complete(const unsigned char *d, size_t len, char *msg, size_t msglen) {
    size_t off = 8;                                  /* after the signature */
    while (len - off >= 12) {
        uint64_t n = read_uint(d + off, 4, 0);
        if (n > len - off - 12) break;
        if (memcmp(d + off + 4, "IEND", 4) == 0) return IC_OK;
        off += 12 + (size_t)n;
    }
    snprintf(msg, msglen, "PNG image is truncated: its %zu bytes end before the IEND chunk", len);
    return IC_INVALID;
}

/* JPEG: marker segments walked to the first scan; after it, the end-of-image marker must come
 * (scan data never holds FF D9: an FF there is followed by 00 or a restart marker). */
static ic_status jpeg_complete(const unsigned char *d, size_t len, char *msg, size_t msglen) {
    size_t off = 2;                                  /* after SOI */
    for (;;) {
        if (off >= len) goto truncated;
        if (d[off] != 0xFF) return IC_OK;            /* not a marker: the decoder's business */
        while (off < len && d[off] == 0xFF) off++;   /* fill bytes */
        if (off >= len) goto truncated;
        unsigned m = d[off++];
        if (m == 0xDA) break;                        /* SOS: scan data follows */
        if (m == 0xD9) return IC_OK;
        if ((m >= 0xD0 && m <= 0xD7) || m == 0x01) continue;   /* no length */
        if (len - off < 2) goto truncated;
        size_t seg = (size_t)read_uint(d + off, 2, 0);
        if (seg < 2) return IC_OK;
        if (seg > len - off) goto truncated;
        off += seg;
    }
    for (; off + 1 < len; off++)
        if (d[off] == 0xFF && d[off + 1] == 0xD9) return IC_OK;
truncated:
    snprintf(msg, msglen, "JPEG image is truncated: its %zu bytes end before the end-of-image "
             "marker", len);
    return IC_INVALID;
}

ic_status ic_check(const unsigned char *data, size_t len, int max_pages, int *tiff_pages,
                   char *msg, size_t msglen) {
    *tiff_pages = 0;
    if (len >= 4 && memcmp(data, "%PDF", 4) == 0) {
        snprintf(msg, msglen, "PDFs are not supported by the tesseract provider; convert pages to "
                 "images first");
        return IC_UNSUPPORTED;
    }
    if (tiff_magic(data, len))
        return tiff_page_count(data, len, max_pages, tiff_pages, msg, msglen);
    if (len >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0)
        return png_complete(data, len, msg, msglen);
    if (len >= 3 && memcmp(data, "\xff\xd8\xff", 3) == 0)
        return jpeg_complete(data, len, msg, msglen);
    return IC_OK;
}
