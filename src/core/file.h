/* Whole-file reading and complete writes to a descriptor (the atomic writer is public:
 * cnn_write_file_atomic). */
#ifndef CNN_CORE_FILE_H
#define CNN_CORE_FILE_H

#include <stddef.h>

/* Reads the regular file path (anything else is refused: a FIFO would hang) of at most max bytes into a new
 * NUL-terminated buffer. */
int cnn_read_file(const char *path, char **data, size_t *len, size_t max);
/* Writes all len bytes to fd, retrying short writes and interruptions. 0, or -1 with errno set. */
int cnn_write_all(int fd, const void *data, size_t len);

#endif
