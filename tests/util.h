/* Helpers shared by the test programs. */
#ifndef CNN_TESTS_UTIL_H
#define CNN_TESTS_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "cnnlab.h"

/* A fresh temporary folder for this test program (removed at exit); returns its path. */
const char *tu_tmpdir(void);
/* Path of name inside tu_tmpdir() (static buffer rotated over 8 slots). */
const char *tu_path(const char *name);
/* Writes bytes to a file; fails the test on error. */
void tu_write(const char *path, const void *data, size_t len);
/* Writes bytes gzip-compressed. */
void tu_write_gz(const char *path, const void *data, size_t len);
/* Asserts that a call failed with status code and that cnn_errmsg() contains every given fragment. */
void tu_assert_error(int rc, int code, const char *fragment);
/* Opens the reference file tests/data/NAME (from the repository root or one folder below it), or the path in
 * the environment variable env; without one the test fails, naming the script that writes the file. */
FILE *tu_open_data(const char *name, const char *env, const char *script);
/* The next line of f that is neither empty nor a # comment, split at its first space into key (returned)
 * and *rest ("" when the line is the key alone); NULL at the end of the file. */
char *tu_next_entry(FILE *f, char **line, size_t *cap, char **rest);

/* p[0..4) <- v, big-endian (IDX headers). */
void tu_put_be32(uint8_t *p, uint32_t v);
/* Writes DIR/PREFIX-images-idx3-ubyte and DIR/PREFIX-labels-idx1-ubyte (".gz" and gzipped with gz) for n
 * 28x28 images: pixels (n*784 bytes) and labels (n bytes) behind the IDX headers. */
void tu_write_idx(const char *dir, const char *prefix, const uint8_t *pixels, const uint8_t *labels, int n,
                  int gz);
/* The cnnlab binary of the build that holds this test program (BUILD/cnnlab for BUILD/tests/test_x, from
 * argv0) into out; -1 with a message on stderr when it is not an executable there. */
int tu_cnnlab_path(const char *argv0, char *out, size_t cap);
/* n zeroed floats (room for at least one), asserted allocated; free() them. */
float *tu_floats(size_t n);
/* v[i] = a uniform value in [-1, 1) from the counter RNG (seed, stream, i), all 24 mantissa bits used, so
 * that rounding (to BF16, or by summation order) shows. */
void tu_fill_uniform(float *v, size_t n, uint64_t seed, uint64_t stream);

#endif
