/* Running a parser of hostile files in a child process, so that a crash or a hang inside a library it
 * relies on (libhdf5) becomes an error instead of taking the caller down. */
#ifndef CNN_IO_ISOLATE_H
#define CNN_IO_ISOLATE_H

#include "core/strbuf.h"

/* Runs fn(arg, out) in a child process and gives the parent the bytes fn appended to out, or fn's error
 * (status and message). A child that crashes, or sends nothing for idle_seconds, is an error naming what
 * (e.g. the file). When no child can be started, fn runs in this process. */
int cnn_run_isolated(int (*fn)(void *arg, cnn_strbuf *out), void *arg, int idle_seconds, const char *what,
                     cnn_strbuf *result);

#endif
