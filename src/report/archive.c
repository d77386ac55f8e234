/* The study's zip archives (spec 6: <study>_models.zip, <study>_images.zip) with libzip. An archive is built
 * in a temporary file beside the target, synced and renamed over it, so a reader never sees half of one;
 * extraction refuses entries that would land outside the destination. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "core/error.h"
#include "report/tfevents.h"

typedef struct zip_job {
    zip_t *za;
    const char *base, *const *suffixes, *out;
    size_t base_len;
    int files;
} zip_job;

static int wanted(const zip_job *j, const char *name)
{
    if (!j->suffixes) return 1;
    size_t n = strlen(name);
    for (const char *const *s = j->suffixes; *s; s++) {
        size_t k = strlen(*s);
        if (n >= k && !strcmp(name + n - k, *s)) return 1;
    }
    return 0;
}

static int add_file(zip_job *j, const char *path)
{
    if (strncmp(path, j->base, j->base_len) || path[j->base_len] != '/')
        return cnn_fail(CNN_ERR_INVALID, "%s: %s is not under %s", j->out, path, j->base);
    zip_source_t *src = zip_source_file(j->za, path, 0, -1) /* -1: to the end */;
    if (!src || zip_file_add(j->za, path + j->base_len + 1, src, ZIP_FL_ENC_UTF_8) < 0) {
        if (src) zip_source_free(src);
        return cnn_fail(CNN_ERR_IO, "%s: cannot add %s: %s", j->out, path, zip_strerror(j->za));
    }
    j->files++;
    return CNN_OK;
}

/* Walks dir depth-first in name order (stable archives), adding the wanted regular files. */
static int add_tree(zip_job *j, const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort), rc = CNN_OK;
    if (n < 0) return cnn_fail(CNN_ERR_IO, "%s: cannot read folder %s: %s", j->out, dir, strerror(errno));
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        const char *name = names[i]->d_name;
        int skip = !strcmp(name, ".") || !strcmp(name, "..") || strstr(name, ".tmp-");
        if (!rc && !skip && snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path &&
            lstat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                rc = add_tree(j, path);
            else if (S_ISREG(st.st_mode) && wanted(j, name) && strcmp(path, j->out))
                rc = add_file(j, path);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static int sync_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int check_target(const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return cnn_fail(CNN_ERR_IO, "%s: exists and is not a regular file; not overwritten", path);
    return CNN_OK;
}

static int finish(zip_job *j, const char *tmp, int rc)
{
    if (!rc && zip_close(j->za) < 0)
        rc = cnn_fail(CNN_ERR_IO, "%s: %s", j->out, zip_strerror(j->za));
    else if (rc)
        zip_discard(j->za);
    if (!rc && (sync_file(tmp) || rename(tmp, j->out)))
        rc = cnn_fail(CNN_ERR_IO, "%s: cannot finish the archive: %s", j->out, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

int cnn_zip_tree(const char *zip_path, const char *base, const char *const *dirs, int ndirs,
                 const char *const *suffixes)
{
    if (!zip_path || !base || !dirs || ndirs < 1)
        return cnn_fail(CNN_ERR_INVALID, "zip archive: missing argument");
    char tmp[4096];
    int rc = check_target(zip_path), err = 0;
    if (rc) return rc;
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld", zip_path, (long)getpid()) >= (int)sizeof tmp)
        return cnn_fail(CNN_ERR_IO, "%s: path too long", zip_path);
    unlink(tmp);
    zip_job j = {zip_open(tmp, ZIP_CREATE | ZIP_EXCL, &err), base, suffixes, zip_path, strlen(base), 0};
    while (j.base_len > 1 && base[j.base_len - 1] == '/') j.base_len--;
    if (!j.za) return cnn_fail(CNN_ERR_IO, "%s: cannot create the archive (libzip error %d)", zip_path, err);
    for (int i = 0; i < ndirs && !rc; i++) rc = add_tree(&j, dirs[i]);
    if (!rc && j.files == 0) rc = cnn_fail(CNN_ERR_INVALID, "%s: no files to archive", zip_path);
    return finish(&j, tmp, rc);
}

/* An entry name that stays inside the destination: relative, no "..", no empty or "." components. */
static int safe_name(const char *name)
{
    if (!*name || *name == '/') return 0;
    for (const char *p = name; *p;) {
        size_t n = strcspn(p, "/");
        if ((n == 2 && !strncmp(p, "..", 2)) || (n == 1 && *p == '.') || (n == 0 && p[0] == '/')) return 0;
        p += n + (p[n] == '/');
    }
    return 1;
}

static int parent_dirs(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) return CNN_OK;
    *slash = '\0';
    return cnn_mkdirs(dir);
}

/* Entries larger than this are refused: no study file comes near it, and a hostile size cannot make the
 * extractor allocate without bound. */
#define MAX_ENTRY (4ull << 30)

static int extract_entry(zip_t *za, zip_int64_t i, const char *zip_path, const char *dest)
{
    zip_stat_t st;
    if (zip_stat_index(za, (zip_uint64_t)i, 0, &st) < 0 || !(st.valid & ZIP_STAT_NAME) ||
        !(st.valid & ZIP_STAT_SIZE))
        return cnn_fail(CNN_ERR_FORMAT, "%s: entry %lld: unreadable header", zip_path, (long long)i);
    if (!safe_name(st.name))
        return cnn_fail(CNN_ERR_FORMAT, "%s: entry '%s' points outside the destination; refused", zip_path,
                        st.name);
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dest, st.name) >= (int)sizeof path)
        return cnn_fail(CNN_ERR_IO, "%s: entry '%s': path too long", zip_path, st.name);
    if (st.name[strlen(st.name) - 1] == '/') return cnn_mkdirs(path);
    if (st.size > MAX_ENTRY)
        return cnn_fail(CNN_ERR_FORMAT, "%s: entry '%s' claims %llu bytes", zip_path, st.name,
                        (unsigned long long)st.size);
    unsigned char *buf = malloc(st.size ? (size_t)st.size : 1);
    zip_file_t *zf = buf ? zip_fopen_index(za, (zip_uint64_t)i, 0) : NULL;
    zip_int64_t got = zf ? zip_fread(zf, buf, st.size) : -1;
    int rc = got == (zip_int64_t)st.size
                 ? parent_dirs(path)
                 : cnn_fail(CNN_ERR_FORMAT, "%s: entry '%s': %s", zip_path, st.name, zip_strerror(za));
    if (zf) zip_fclose(zf);
    if (!rc) rc = cnn_write_file_atomic(path, buf, (size_t)st.size);
    free(buf);
    return rc;
}

int cnn_unzip(const char *zip_path, const char *dest)
{
    int err = 0, rc = CNN_OK;
    zip_t *za = zip_open(zip_path, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        rc = cnn_fail(err == ZIP_ER_OPEN || err == ZIP_ER_NOENT ? CNN_ERR_IO : CNN_ERR_FORMAT, "%s: %s",
                      zip_path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return rc;
    }
    zip_int64_t n = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < n && !rc; i++) rc = extract_entry(za, i, zip_path, dest);
    zip_discard(za);
    return rc;
}
