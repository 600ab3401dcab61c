/* The monotonic clock in seconds, for deadlines that must not jump when the wall clock is set:
 * one definition for ocr.core (sys.c) and ocr.curl (curl_multi.c). */
#ifndef OCR_CLOCK_H
#define OCR_CLOCK_H

#include <time.h>

static inline double ocr_monotime(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
