/* The history inside JSON documents (history.json and the run record). */
#ifndef CNN_MODEL_HISTORY_H
#define CNN_MODEL_HISTORY_H

#include "cnnlab.h"
#include "core/json.h"

/* Writes the history's members into the object w is writing: exact (%.17g, run records) or as floats. */
void cnn_history_write(cnn_json_writer *w, const cnn_history *h, int exact);
/* Reads them back from obj; NaN stands for null. Errors name origin and the field. */
int cnn_history_read(const cnn_json *obj, cnn_history *h, const char *origin);

#endif
