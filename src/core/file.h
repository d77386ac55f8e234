/* Whole-file reading and complete writes to a descriptor (the atomic writer is public:
 * cnn_write_file_atomic). */
#ifndef CNN_CORE_FILE_H
#define CNN_CORE_FILE_H

#include <stddef.h>

#include "cnnlab.h"

/* cnn_read_file (regular files only) is public: include/cnnlab.h. */
/* Writes all len bytes to fd, retrying short writes and interruptions. 0, or -1 with errno set. */
int cnn_write_all(int fd, const void *data, size_t len);

/* Longest model name: it names files and folders (a run's folder, a study's rows). */
enum { CNN_MAX_NAME = 63 }; /* the messages of cnn_file_name_problem say 63 */
/* Why name (its first len bytes) cannot be a plain file name (empty, "." or "..", a '/', a leading '-',
 * a control character, longer than CNN_MAX_NAME), or NULL when it can. *at receives the offending byte's
 * index. */
const char *cnn_file_name_problem(const char *name, size_t len, size_t *at);

#endif
