#include "util.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/rng.h"

static char g_dir[256];

static void remove_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
}

const char *tu_tmpdir(void)
{
    if (!g_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/cnnlab-test-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(g_dir)) fail_msg("mkdtemp failed");
        atexit(remove_dir);
    }
    return g_dir;
}

const char *tu_path(const char *name)
{
    static char slots[8][512];
    static int next;
    char *p = slots[next++ % 8];
    snprintf(p, 512, "%s/%s", tu_tmpdir(), name);
    return p;
}

void tu_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

void tu_write_gz(const char *path, const void *data, size_t len)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(g), Z_OK);
}

void tu_assert_error(int rc, int code, const char *fragment)
{
    if (rc != code) fail_msg("expected status %d, got %d (%s)", code, rc, cnn_errmsg());
    if (fragment && !strstr(cnn_errmsg(), fragment))
        fail_msg("error message \"%s\" lacks \"%s\"", cnn_errmsg(), fragment);
}

FILE *tu_open_data(const char *name, const char *env, const char *script)
{
    char here[256], above[256];
    snprintf(here, sizeof here, "tests/data/%s", name);
    snprintf(above, sizeof above, "../tests/data/%s", name);
    const char *paths[] = {getenv(env), here, above};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        FILE *f = paths[i] ? fopen(paths[i], "r") : NULL;
        if (f) return f;
    }
    fail_msg("%s not found (run from the repository root or set %s; %s writes it)", here, env, script);
    return NULL;
}

char *tu_next_entry(FILE *f, char **line, size_t *cap, char **rest)
{
    ssize_t len;
    do {
        if ((len = getline(line, cap, f)) < 0) return NULL;
        if (len > 0 && (*line)[len - 1] == '\n') (*line)[--len] = '\0';
    } while (len == 0 || (*line)[0] == '#');
    char *sp = strchr(*line, ' ');
    *rest = sp ? sp + 1 : *line + len;
    if (sp) *sp = '\0';
    return *line;
}

int tu_cnnlab_path(const char *argv0, char *out, size_t cap)
{
    char self[1024];
    snprintf(self, sizeof self, "%s", argv0);
    snprintf(out, cap, "%s/cnnlab", dirname(dirname(self)));
    if (access(out, X_OK) == 0) return 0;
    fprintf(stderr, "%s: %s is not an executable (run from the repository root)\n", argv0, out);
    return -1;
}

void tu_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void write_one(const char *path, const uint8_t *head, size_t head_len, const uint8_t *body, size_t len,
                      int gz)
{
    uint8_t *all = malloc(head_len + len);
    assert_non_null(all);
    memcpy(all, head, head_len);
    memcpy(all + head_len, body, len);
    gz ? tu_write_gz(path, all, head_len + len) : tu_write(path, all, head_len + len);
    free(all);
}

void tu_write_idx(const char *dir, const char *prefix, const uint8_t *pixels, const uint8_t *labels, int n,
                  int gz)
{
    uint8_t img[16], lab[8];
    tu_put_be32(img, 0x803), tu_put_be32(img + 4, (uint32_t)n), tu_put_be32(img + 8, 28),
        tu_put_be32(img + 12, 28);
    tu_put_be32(lab, 0x801), tu_put_be32(lab + 4, (uint32_t)n);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, prefix, gz ? ".gz" : "");
    write_one(path, img, sizeof img, pixels, (size_t)n * 784, gz);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, prefix, gz ? ".gz" : "");
    write_one(path, lab, sizeof lab, labels, (size_t)n, gz);
}

float *tu_floats(size_t n)
{
    float *v = calloc(n ? n : 1, sizeof(float));
    assert_non_null(v);
    return v;
}

void tu_fill_uniform(float *v, size_t n, uint64_t seed, uint64_t stream)
{
    for (size_t i = 0; i < n; i++) v[i] = cnn_rng_uniform(seed, stream, i) * 2.0f - 1.0f;
}
