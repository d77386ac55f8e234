/* Internal error reporting: record a message for cnn_errmsg() and return the status, so a failing
 * function ends with `return cnn_fail(CNN_ERR_..., "...")`. */
#ifndef CNN_CORE_ERROR_H
#define CNN_CORE_ERROR_H

#include "cnnlab.h"

#if defined(__GNUC__)
#define CNN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CNN_PRINTF(a, b)
#endif

int cnn_fail(int code, const char *fmt, ...) CNN_PRINTF(2, 3);
/* Prefixes the current message with more context ("while loading x: ") and returns the current status. */
int cnn_fail_context(const char *fmt, ...) CNN_PRINTF(1, 2);
void cnn_clear_error(void);
/* Where in the text being parsed the last error occurred (a character offset), or -1. Parsers of larger
 * texts (spec files) use it to point at a line and column. */
void cnn_error_set_offset(int offset);
int cnn_error_offset(void);

#endif
