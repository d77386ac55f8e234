/* One temporary file per fuzzing process (see fuzz_file.h). */
#include "fuzz_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/file.h"

static char path[64];

/* The file goes when the fuzzer exits normally (a crash leaves it, beside the crash's own input). */
static void remove_file(void)
{
    unlink(path);
}

const char *fuzz_file(const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (fd < 0) {
        /* Under /dev/shm when there is one: millions of runs should not wear a disk. */
        snprintf(path, sizeof path, "%s/cnnlab-fuzz-XXXXXX", access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
        fd = mkstemp(path);
        if (fd < 0) abort();
        atexit(remove_file);
    }
    if (ftruncate(fd, 0) || lseek(fd, 0, SEEK_SET) || cnn_write_all(fd, data, size)) abort();
    return path;
}
