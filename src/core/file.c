/* Atomic file output: write a temporary file beside the target, fsync it, rename it over the target, fsync
 * the folder. A crash leaves either the old file or the new one, never a torn one. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
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

/* The inputs of this run (device and inode, so that another name for the same file is caught too). */
enum { MAX_PROTECTED = 64 };
static struct {
    dev_t dev;
    ino_t ino;
} protected_files[MAX_PROTECTED];
static int n_protected;
static pthread_mutex_t protect_lock = PTHREAD_MUTEX_INITIALIZER;

int cnn_file_protect(const char *path)
{
    struct stat st;
    if (stat(path, &st)) return cnn_fail(CNN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    pthread_mutex_lock(&protect_lock);
    int full = n_protected == MAX_PROTECTED;
    if (!full) {
        protected_files[n_protected].dev = st.st_dev;
        protected_files[n_protected++].ino = st.st_ino;
    }
    pthread_mutex_unlock(&protect_lock);
    if (full) return cnn_fail(CNN_ERR_INVALID, "%s: more than %d protected inputs", path, MAX_PROTECTED);
    return CNN_OK;
}

void cnn_file_unprotect_all(void)
{
    pthread_mutex_lock(&protect_lock);
    n_protected = 0;
    pthread_mutex_unlock(&protect_lock);
}

static int is_protected(const struct stat *st)
{
    int hit = 0;
    pthread_mutex_lock(&protect_lock);
    for (int i = 0; i < n_protected && !hit; i++)
        hit = protected_files[i].dev == st->st_dev && protected_files[i].ino == st->st_ino;
    pthread_mutex_unlock(&protect_lock);
    return hit;
}

/* The rename would replace whatever the name points at: a device node (/dev/full), a FIFO or a folder must
 * stay, and so must an input of this run. A missing target is fine. */
static int check_target(const char *path)
{
    struct stat st;
    if (stat(path, &st)) {
        if (errno == ENOENT) return CNN_OK;
        return cnn_fail(CNN_ERR_IO, "%s: cannot stat the output: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return cnn_fail(CNN_ERR_IO, "%s: the output exists and is not a regular file (%s); not replaced",
                        path,
                        S_ISDIR(st.st_mode)                          ? "a folder"
                        : S_ISFIFO(st.st_mode)                       ? "a FIFO"
                        : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                     : "a special file");
    if (is_protected(&st))
        return cnn_fail(CNN_ERR_IO, "%s: the output is an input of this run; not replaced", path);
    return CNN_OK;
}

int cnn_write_file_atomic(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    int rc = check_target(path);
    if (rc) return rc;
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

const char *cnn_file_name_problem(const char *name, size_t len, size_t *at)
{
    *at = 0;
    if (len == 0) return "is empty";
    if (len > CNN_MAX_NAME) return "is too long: at most 63 characters are allowed";
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return "cannot be \".\" or \"..\" (it names a folder)";
    if (name[0] == '-') return "cannot start with '-' (it would read as an option)";
    for (size_t i = 0; i < len; i++) {
        *at = i;
        if (name[i] == '/') return "cannot contain '/' (it names a file, not a path)";
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return "cannot contain control characters";
    }
    *at = 0;
    return NULL;
}
