/* The one JSON writer and reader of cnnlab (run records, histories, metrics). The writer lays objects out one
 * member per line and arrays on one line; numbers are written so that they read back exactly (%.17g) or as
 * floats (%.9g), and non-finite numbers as null, which JSON requires. The reader builds a small tree and
 * reports the offset, line and column of the first error. */
#ifndef CNN_CORE_JSON_H
#define CNN_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"

/* ---- writer */

typedef struct cnn_json_writer {
    cnn_strbuf *b;
    int depth;
    int count[32];   /* members or items written at each depth */
    int inline_[32]; /* arrays: items on one line */
} cnn_json_writer;

void cnn_jw_init(cnn_json_writer *w, cnn_strbuf *b);
void cnn_jw_object(cnn_json_writer *w, const char *key); /* key NULL: top level or array item */
void cnn_jw_array(cnn_json_writer *w, const char *key);
void cnn_jw_end(cnn_json_writer *w);                               /* closes the innermost object or array */
void cnn_jw_number(cnn_json_writer *w, const char *key, double v); /* %.17g */
void cnn_jw_float(cnn_json_writer *w, const char *key, double v);  /* %.9g: a float's digits */
void cnn_jw_int(cnn_json_writer *w, const char *key, int64_t v);
void cnn_jw_string(cnn_json_writer *w, const char *key, const char *s);
void cnn_jw_bool(cnn_json_writer *w, const char *key, int v);
/* Arrays of n values in one line. */
void cnn_jw_floats(cnn_json_writer *w, const char *key, const float *v, size_t n);
void cnn_jw_ints(cnn_json_writer *w, const char *key, const int32_t *v, size_t n);
void cnn_jw_int64s(cnn_json_writer *w, const char *key, const int64_t *v, size_t n);

/* ---- reader */

typedef enum {
    CNN_JSON_NULL,
    CNN_JSON_BOOL,
    CNN_JSON_NUMBER,
    CNN_JSON_STRING,
    CNN_JSON_ARRAY,
    CNN_JSON_OBJECT
} cnn_json_type;

typedef struct cnn_json {
    cnn_json_type type;
    double number;          /* NUMBER, and BOOL as 0/1 */
    char *string;           /* STRING */
    char *key;              /* the member's name inside an object */
    struct cnn_json *items; /* ARRAY and OBJECT */
    int count;
} cnn_json;

/* Parses len bytes of text; origin names it in errors ("run.json: line 3, column 7: ..."). NULL on error. */
cnn_json *cnn_json_parse(const char *text, size_t len, const char *origin);
void cnn_json_free(cnn_json *j);
/* The member named key of an object, or NULL. */
const cnn_json *cnn_json_get(const cnn_json *obj, const char *key);

#endif
