/* The fuzz harnesses' shared piece: the readers under test take a path (and accept only regular files), so
 * each input is written to one temporary file per process, rewritten in place for every run. */
#ifndef CNN_FUZZ_FILE_H
#define CNN_FUZZ_FILE_H

#include <stddef.h>
#include <stdint.h>

/* The path of a regular file now holding exactly data[0..size). Aborts when the file cannot be written
 * (a harness failure, not a finding). */
const char *fuzz_file(const uint8_t *data, size_t size);

#endif
