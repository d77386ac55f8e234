/* Atomic file output: write a temporary file beside the target, fsync it, rename it over the target, fsync
 * the folder. A crash leaves either the old file or the new one, never a torn one. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"

int cnn_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

static void sync_parent(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int cnn_write_file_atomic(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= (int)sizeof tmp)
        return cnn_fail(CNN_ERR_IO, "%s: path too long", path);
    int fd = mkstemp(tmp);
    if (fd < 0) return cnn_fail(CNN_ERR_IO, "%s: cannot create a temporary file: %s", path, strerror(errno));
    /* mkstemp creates 0600; give the file the permissions a plain fopen would have. */
    mode_t mask = umask(0);
    umask(mask);
    int err = fchmod(fd, 0666 & ~mask) ? errno : 0;
    if (!err && cnn_write_all(fd, data, len)) err = errno;
    if (!err && fsync(fd)) err = errno;
    if (close(fd) && !err) err = errno;
    if (!err && rename(tmp, path)) err = errno;
    if (err) {
        unlink(tmp);
        return cnn_fail(CNN_ERR_IO, "%s: write failed: %s", path, strerror(err ? err : EIO));
    }
    sync_parent(path);
    return CNN_OK;
}

/* Only regular files: a FIFO would block the reader forever and a device can be endless. */
int cnn_read_file(const char *path, char **data, size_t *len, size_t max)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return cnn_fail(CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return cnn_fail(CNN_ERR_IO, "%s: not a regular file", path);
    }
    if ((size_t)st.st_size > max) {
        close(fd);
        return cnn_fail(CNN_ERR_FORMAT, "%s: %lld bytes; at most %zu expected", path, (long long)st.st_size,
                        max);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = 0;
    while (buf && n < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        n += (size_t)k;
    }
    int err = !buf ? ENOMEM : n < (size_t)st.st_size ? (errno ? errno : EIO) : 0;
    close(fd);
    if (err) {
        free(buf);
        return cnn_fail(err == ENOMEM ? CNN_ERR_NOMEM : CNN_ERR_IO, "%s: read error: %s", path,
                        strerror(err));
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return CNN_OK;
}
