/* The saved-model file (.cnn), version 1. Little-endian throughout:
 *
 *   "CNNLAB\r\n"            8-byte magic (the CR LF catches text-mode mangling)
 *   u32 version             1
 *   sections, each:  u32 tag, u64 length, payload
 *     ARCH  text: "model \"NAME\"\n", "input H W C\n", then one "layer TYPE OPTIONS\n" per layer (name= and
 *           trainable= included)
 *     TENS  u32 count, then per tensor: u16 name length, name ("layer/param"), u8 dtype (1 = float32),
 *           u8 rank, u32 dims[rank], float32 data
 *     SPEC  text: the spec file the model was built from (optional)
 *     OPTM  optimizer configuration, step count and state slots (optional; see put_optimizer)
 *   u32 tag "END!", u64 0, u32 CRC-32 (zlib) of every byte before it
 *
 * Readers skip sections they do not know, so later versions can add (spec text, optimizer state) freely. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/bytes.h"
#include "core/error.h"
#include "core/file.h"
#include "core/strbuf.h"
#include "io/model_file.h"
#include "model/model.h"

#define MAGIC "CNNLAB\r\n"
/* MIN_FILE: magic, version, the end marker's tag and length, checksum. */
enum { VERSION = 1, DTYPE_F32 = 1, MAX_FILE = 1 << 30, MIN_FILE = 8 + 4 + 16 };

static uint32_t tag(const char s[4])
{
    return (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
}

static void put_u8(cnn_strbuf *b, uint8_t v)
{
    cnn_strbuf_append(b, &v, 1);
}

/* Options text without name= and trainable=, which the file states itself. */
static void canonical_options(const cnn_layer *l, cnn_strbuf *b)
{
    cnn_opts o;
    if (cnn_opts_parse(&o, l->options, "saved layer") != CNN_OK)
        return; /* it parsed when the layer was made */
    cnn_strbuf_printf(b, "name=\"%s\", trainable=%d", l->name, l->trainable);
    for (int i = 0; i < o.n; i++) {
        if (!strcmp(o.items[i].key, "name") || !strcmp(o.items[i].key, "trainable")) continue;
        cnn_strbuf_printf(b, ", %s=%s", o.items[i].key, o.items[i].val);
    }
}

static void put_arch(const cnn_model *m, cnn_strbuf *b)
{
    cnn_strbuf t = {0};
    cnn_strbuf_printf(&t, "model \"%s\"\ninput %d %d %d\n", m->name, m->input.h, m->input.w, m->input.c);
    for (int i = 0; i < m->nlayers; i++) {
        cnn_strbuf_printf(&t, "layer %s ", m->layers[i].ops->type);
        canonical_options(&m->layers[i], &t);
        cnn_strbuf_printf(&t, "\n");
    }
    cnn_put_le(b, tag("ARCH"), 4);
    cnn_put_le(b, t.len, 8);
    cnn_strbuf_append(b, t.data, t.len);
    b->failed |= t.failed;
    cnn_strbuf_free(&t);
}

static void put_tensors(const cnn_model *m, cnn_strbuf *b)
{
    cnn_strbuf t = {0};
    uint32_t count = 0;
    for (int i = 0; i < m->nlayers; i++) count += (uint32_t)m->layers[i].nparams;
    cnn_put_le(&t, count, 4);
    for (int i = 0; i < m->nlayers; i++)
        for (int j = 0; j < m->layers[i].nparams; j++) {
            const cnn_param *p = &m->layers[i].params[j];
            char name[128];
            int len = snprintf(name, sizeof name, "%s/%s", m->layers[i].name, p->name);
            cnn_put_le(&t, (uint64_t)len, 2);
            cnn_strbuf_append(&t, name, (size_t)len);
            put_u8(&t, DTYPE_F32);
            put_u8(&t, (uint8_t)p->rank);
            for (int d = 0; d < p->rank; d++) cnn_put_le(&t, (uint64_t)p->dim[d], 4);
            const float *v = m->params + p->offset;
            for (size_t e = 0; e < p->size; e++) {
                uint32_t bits;
                memcpy(&bits, &v[e], 4);
                cnn_put_le(&t, bits, 4);
            }
        }
    cnn_put_le(b, tag("TENS"), 4);
    cnn_put_le(b, t.len, 8);
    cnn_strbuf_append(b, t.data, t.len);
    b->failed |= t.failed;
    cnn_strbuf_free(&t);
}

static void put_section(cnn_strbuf *b, const char *t, const cnn_strbuf *payload)
{
    cnn_put_le(b, tag(t), 4);
    cnn_put_le(b, payload->len, 8);
    cnn_strbuf_append(b, payload->data, payload->len);
    b->failed |= payload->failed;
}

static void put_floats(cnn_strbuf *b, const float *v, size_t n)
{
    for (size_t e = 0; e < n; e++) {
        uint32_t bits;
        memcpy(&bits, &v[e], 4);
        cnn_put_le(b, bits, 4);
    }
}

/* SPEC: the spec text the model was built from, as given. */
static void put_spec(const cnn_model *m, cnn_strbuf *b)
{
    if (!m->spec_text) return;
    cnn_strbuf t = {0};
    cnn_strbuf_append(&t, m->spec_text, strlen(m->spec_text));
    put_section(b, "SPEC", &t);
    cnn_strbuf_free(&t);
}

/* OPTM: the optimizer's configuration, step count and state slots, so training can resume where it stopped:
 *   u32 kind, u32 nesterov, f64 learning_rate, beta_1, beta_2, epsilon, momentum, rho, current lr,
 *   u64 t, u64 model steps, u32 slots (bit 0: m, bit 1: v), then m and v (float32, nparams each). */
static void put_optimizer(const cnn_model *m, cnn_strbuf *b)
{
    const cnn_optimizer *o = &m->x.opt;
    cnn_strbuf t = {0};
    cnn_put_le(&t, (uint64_t)o->cfg.kind, 4);
    cnn_put_le(&t, (uint64_t)o->cfg.nesterov, 4);
    const double cfg[] = {o->cfg.learning_rate, o->cfg.beta_1, o->cfg.beta_2, o->cfg.epsilon,
                          o->cfg.momentum,      o->cfg.rho,    o->lr};
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) cnn_put_f64(&t, cfg[i]);
    cnn_put_le(&t, (uint64_t)o->t, 8);
    cnn_put_le(&t, m->x.rng_step, 8);
    cnn_put_le(&t, (o->m ? 1u : 0u) | (o->v ? 2u : 0u), 4);
    if (o->m) put_floats(&t, o->m, m->nparams);
    if (o->v) put_floats(&t, o->v, m->nparams);
    put_section(b, "OPTM", &t);
    cnn_strbuf_free(&t);
}

/* LOSS: u32 kind, u32 from_logits; written only for logits models, so a probability model's file is what it
 * was before losses were explicit. */
static void put_loss(const cnn_model *m, cnn_strbuf *b)
{
    if (!m->x.loss.from_logits) return;
    cnn_strbuf t = {0};
    cnn_put_le(&t, (uint64_t)m->x.loss.kind, 4);
    cnn_put_le(&t, 1, 4);
    put_section(b, "LOSS", &t);
    cnn_strbuf_free(&t);
}

int cnn_model_save(const cnn_model *m, const char *path)
{
    return cnn_model_save_ex(m, path, 0);
}

int cnn_model_save_ex(const cnn_model *m, const char *path, unsigned flags)
{
    return cnn_model_save_extra(m, path, flags, NULL);
}

int cnn_model_save_extra(const cnn_model *m, const char *path, unsigned flags, const cnn_model_extra *extra)
{
    if (flags & ~(unsigned)CNN_SAVE_OPTIMIZER)
        return cnn_fail(CNN_ERR_INVALID, "%s: unknown save flags %#x", path, flags);
    if ((flags & CNN_SAVE_OPTIMIZER) && !m->x.compiled)
        return cnn_fail(CNN_ERR_STATE, "%s: model '%s' has no optimizer to save (compile it first)", path,
                        m->name);
    if (!m->built) return cnn_fail(CNN_ERR_STATE, "model '%s': build it before saving", m->name);
    if (cnn_model_check_finite(m, path)) return cnn_errcode();
    cnn_strbuf b = {0};
    cnn_strbuf_append(&b, MAGIC, 8);
    cnn_put_le(&b, VERSION, 4);
    put_arch(m, &b);
    put_tensors(m, &b);
    put_spec(m, &b);
    put_loss(m, &b);
    if (flags & CNN_SAVE_OPTIMIZER) put_optimizer(m, &b);
    if (extra) put_section(&b, extra->tag, &(cnn_strbuf){.data = (char *)extra->data, .len = extra->len});
    cnn_put_le(&b, tag("END!"), 4);
    cnn_put_le(&b, 0, 8);
    uint32_t crc = b.failed ? 0 : (uint32_t)crc32(0L, (const Bytef *)b.data, (uInt)b.len);
    cnn_put_le(&b, crc, 4);
    int rc = b.failed ? cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", path)
                      : cnn_write_file_atomic(path, b.data, b.len);
    cnn_strbuf_free(&b);
    return rc;
}

/* ------------------------------------------------------------------ loading */

typedef struct reader {
    const uint8_t *p;
    size_t len, pos;
    const char *path;
} reader;

static int need(reader *r, size_t n, const char *what)
{
    if (r->len - r->pos < n)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: offset %zu: truncated while reading %s (%zu bytes needed, %zu left)", r->path,
                        r->pos, what, n, r->len - r->pos);
    return CNN_OK;
}

static uint64_t get_le(reader *r, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)r->p[r->pos + (size_t)i] << (8 * i);
    r->pos += (size_t)bytes;
    return v;
}

/* A model or layer error met while rebuilding the architecture is a defect of the file: restate it as a
 * format error naming the file (line 0: the build of the whole architecture). */
static int arch_fail(const char *path, int lineno)
{
    char why[1024];
    snprintf(why, sizeof why, "%s", cnn_errmsg());
    int code = cnn_errcode() == CNN_ERR_NOMEM ? CNN_ERR_NOMEM : CNN_ERR_FORMAT;
    if (lineno) return cnn_fail(code, "%s: architecture line %d: %s", path, lineno, why);
    return cnn_fail(code, "%s: architecture: %s", path, why);
}

/* The quoted name of a "model" line, whole: a longer name is an error, never cut to fit. */
static int arch_name(char name[64], const char *quoted, int lineno, const char *path)
{
    const char *end = strrchr(quoted, '"'); /* the last quote: a name may hold quotes */
    size_t len = end ? (size_t)(end - quoted) : 0;
    if (!end || end[1] || len > 63)
        return cnn_fail(CNN_ERR_FORMAT, "%s: architecture line %d: %s", path, lineno,
                        !end || end[1] ? "expected 'model \"NAME\"'"
                                       : "model name longer than 63 characters");
    memcpy(name, quoted, len);
    name[len] = '\0';
    return CNN_OK;
}

/* Parses one "layer TYPE OPTIONS" line into the model. */
static int arch_line(cnn_model **m, char name[64], const char *line, int lineno, const char *path)
{
    int h, w, c;
    if (!*m) {
        if (!strncmp(line, "model \"", 7)) return arch_name(name, line + 7, lineno, path);
        if (sscanf(line, "input %d %d %d", &h, &w, &c) == 3) {
            *m = cnn_model_create(name, h, w, c);
            return *m ? CNN_OK : arch_fail(path, lineno);
        }
        return cnn_fail(CNN_ERR_FORMAT, "%s: architecture line %d: expected 'input H W C'", path, lineno);
    }
    char type[64];
    int used = 0;
    if (sscanf(line, "layer %63s %n", type, &used) != 1 || used == 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: architecture line %d: expected 'layer TYPE OPTIONS'", path,
                        lineno);
    if (cnn_model_add(*m, type, line + used)) return arch_fail(path, lineno);
    return CNN_OK;
}

static int parse_arch(const char *text, size_t len, const char *path, cnn_model **out)
{
    char *copy = malloc(len + 1);
    if (!copy) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (strlen(copy) != len) {
        free(copy);
        return cnn_fail(CNN_ERR_FORMAT, "%s: architecture text contains a NUL byte", path);
    }
    cnn_model *m = NULL;
    char name[64] = "";
    int rc = CNN_OK, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line && !rc; line = strtok_r(NULL, "\n", &save))
        rc = arch_line(&m, name, line, ++lineno, path);
    free(copy);
    if (!rc && (!m || m->nlayers == 0)) rc = cnn_fail(CNN_ERR_FORMAT, "%s: architecture has no layers", path);
    if (!rc && cnn_model_build(m, 0)) rc = arch_fail(path, 0);
    if (rc) cnn_model_free(m);
    *out = rc ? NULL : m;
    return rc;
}

/* Index of the tensor "layer/param" in model order, or -1. */
static int find_param(const cnn_model *m, const char *name, cnn_param **out)
{
    int k = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int j = 0; j < m->layers[i].nparams; j++, k++) {
            char full[160];
            snprintf(full, sizeof full, "%s/%s", m->layers[i].name, m->layers[i].params[j].name);
            if (!strcmp(full, name)) {
                *out = &m->layers[i].params[j];
                return k;
            }
        }
    return -1;
}

static int read_tensor_header(reader *r, char *name, size_t cap, int *dtype, int *rank)
{
    int rc = need(r, 2, "a tensor name length");
    if (rc) return rc;
    size_t nlen = (size_t)get_le(r, 2);
    if (nlen == 0 || nlen >= cap)
        return cnn_fail(CNN_ERR_FORMAT, "%s: offset %zu: bad tensor name length %zu", r->path, r->pos - 2,
                        nlen);
    if ((rc = need(r, nlen + 2, "a tensor header"))) return rc;
    memcpy(name, r->p + r->pos, nlen);
    name[nlen] = '\0';
    r->pos += nlen;
    *dtype = (int)get_le(r, 1);
    *rank = (int)get_le(r, 1);
    return CNN_OK;
}

static int read_tensor(reader *r, cnn_model *m, uint8_t *seen)
{
    char name[256];
    int dtype = 0, rank = 0;
    int rc = read_tensor_header(r, name, sizeof name, &dtype, &rank);
    if (rc) return rc;
    cnn_param *p;
    int k = find_param(m, name, &p);
    if (k < 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s' does not belong to the saved architecture", r->path,
                        name);
    if (seen[k]) return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s' is stored twice", r->path, name);
    if (dtype != DTYPE_F32)
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s': dtype %d, expected 1 (float32)", r->path, name,
                        dtype);
    if (rank != p->rank)
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s': rank %d, expected %d", r->path, name, rank,
                        p->rank);
    if ((rc = need(r, 4u * (size_t)rank, "tensor dimensions"))) return rc;
    for (int d = 0; d < rank; d++) {
        uint64_t v = get_le(r, 4);
        if (v != (uint64_t)p->dim[d])
            return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s': dimension %d is %llu, expected %d", r->path,
                            name, d, (unsigned long long)v, p->dim[d]);
    }
    if ((rc = need(r, 4 * p->size, "tensor data"))) return rc;
    memcpy(m->params + p->offset, r->p + r->pos, 4 * p->size); /* the file is little-endian, as is the host */
    r->pos += 4 * p->size;
    seen[k] = 1;
    return CNN_OK;
}

static int read_tensors(reader *r, cnn_model *m)
{
    int rc = need(r, 4, "the tensor count");
    if (rc) return rc;
    uint32_t count = (uint32_t)get_le(r, 4);
    int expected = 0;
    for (int i = 0; i < m->nlayers; i++) expected += m->layers[i].nparams;
    uint8_t *seen = calloc((size_t)expected + 1, 1);
    if (!seen) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    for (uint32_t t = 0; t < count && !rc; t++) rc = read_tensor(r, m, seen);
    if (!rc) rc = cnn_model_check_finite(m, r->path);
    for (int k = 0; k < expected && !rc; k++)
        if (!seen[k]) {
            int i = 0, j = k;
            while (j >= m->layers[i].nparams) j -= m->layers[i++].nparams;
            rc = cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s/%s' is missing", r->path, m->layers[i].name,
                          m->layers[i].params[j].name);
        }
    free(seen);
    return rc;
}

static int check_envelope(reader *r)
{
    size_t head = r->len < 8 ? r->len : 8;
    if (!r->len) return cnn_fail(CNN_ERR_FORMAT, "%s: empty file, not a cnnlab model file", r->path);
    if (memcmp(r->p, MAGIC, head))
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: offset 0: not a cnnlab model file (magic \"CNNLAB\\r\\n\" missing)", r->path);
    /* The magic (or its start) is there: a cnnlab model file, cut short. */
    if (r->len < MIN_FILE)
        return cnn_fail(CNN_ERR_FORMAT, "%s: truncated: %zu bytes; a model file has at least %d", r->path,
                        r->len, MIN_FILE);
    uint32_t stored = (uint32_t)r->p[r->len - 4] | (uint32_t)r->p[r->len - 3] << 8 |
                      (uint32_t)r->p[r->len - 2] << 16 | (uint32_t)r->p[r->len - 1] << 24;
    uint32_t crc = (uint32_t)crc32(0L, r->p, (uInt)(r->len - 4));
    if (stored != crc)
        return cnn_fail(
            CNN_ERR_FORMAT,
            "%s: checksum mismatch (stored %08x, computed %08x): the file is damaged or truncated", r->path,
            stored, crc);
    r->pos = 8;
    uint32_t version = (uint32_t)get_le(r, 4);
    if (version != VERSION)
        return cnn_fail(CNN_ERR_FORMAT, "%s: offset 8: format version %u, this cnnlab reads version %d",
                        r->path, version, VERSION);
    r->len -= 4; /* the sections end before the checksum */
    return CNN_OK;
}

static int read_spec(reader *r, size_t len, cnn_model *m)
{
    if (memchr(r->p + r->pos, '\0', len))
        return cnn_fail(CNN_ERR_FORMAT, "%s: offset %zu: the spec text contains a NUL byte", r->path, r->pos);
    char *text = malloc(len + 1);
    if (!text) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    memcpy(text, r->p + r->pos, len);
    text[len] = '\0';
    m->spec_text = text;
    return CNN_OK;
}

static double get_double(reader *r)
{
    uint64_t bits = get_le(r, 8);
    double v;
    memcpy(&v, &bits, 8);
    return v;
}

static int read_loss(reader *r, size_t len, cnn_model *m)
{
    if (len != 8)
        return cnn_fail(CNN_ERR_FORMAT, "%s: offset %zu: the loss section has %zu bytes; expected 8", r->path,
                        r->pos, len);
    uint32_t kind = (uint32_t)get_le(r, 4), logits = (uint32_t)get_le(r, 4);
    if (kind != CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY || logits > 1)
        return cnn_fail(CNN_ERR_FORMAT, "%s: unknown loss (kind %u, from_logits %u)", r->path, kind, logits);
    m->x.loss = (cnn_loss_config){CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, (int)logits};
    return cnn_model_check_loss(m, &m->x.loss) ? cnn_fail_context("%s: saved loss: ", r->path) : CNN_OK;
}

/* Compiles the loaded model with the saved optimizer and restores its step count and state slots. */
static int read_optimizer(reader *r, cnn_model *m)
{
    int rc = need(r, 4 + 4 + 7 * 8 + 8 + 8 + 4, "the optimizer header");
    if (rc) return rc;
    cnn_optimizer_config cfg = {0};
    uint32_t kind = (uint32_t)get_le(r, 4);
    cfg.nesterov = (int)get_le(r, 4);
    cfg.learning_rate = get_double(r), cfg.beta_1 = get_double(r), cfg.beta_2 = get_double(r);
    cfg.epsilon = get_double(r), cfg.momentum = get_double(r), cfg.rho = get_double(r);
    double lr = get_double(r);
    uint64_t t = get_le(r, 8), steps = get_le(r, 8);
    uint32_t slots = (uint32_t)get_le(r, 4);
    if (kind > CNN_OPT_RMSPROP || cfg.nesterov > 1 || t > ((uint64_t)1 << 62) || !(lr > 0))
        return cnn_fail(CNN_ERR_FORMAT, "%s: the optimizer state is invalid (kind %u, t %llu, lr %g)",
                        r->path, kind, (unsigned long long)t, lr);
    cfg.kind = (cnn_optimizer_kind)kind;
    if (cnn_model_compile_loss(m, &cfg, &m->x.loss))
        return cnn_fail_context("%s: saved optimizer: ", r->path);
    if (slots != ((m->x.opt.m ? 1u : 0u) | (m->x.opt.v ? 2u : 0u)))
        return cnn_fail(CNN_ERR_FORMAT, "%s: the optimizer state has slots %#x, %s needs %#x", r->path, slots,
                        kind == CNN_OPT_ADAM  ? "Adam"
                        : kind == CNN_OPT_SGD ? "SGD"
                                              : "RMSprop",
                        (m->x.opt.m ? 1u : 0u) | (m->x.opt.v ? 2u : 0u));
    float *dst[2] = {m->x.opt.m, m->x.opt.v};
    for (int i = 0; i < 2; i++) {
        if (!dst[i]) continue;
        if ((rc = need(r, 4 * m->nparams, "optimizer state"))) return rc;
        memcpy(dst[i], r->p + r->pos, 4 * m->nparams);
        r->pos += 4 * m->nparams;
    }
    m->x.opt.t = (long)t;
    m->x.opt.lr = lr;
    m->x.rng_step = steps;
    return CNN_OK;
}

/* Keeps a copy of the caller's extra section. */
static int read_extra(reader *r, size_t len, cnn_model_extra *extra)
{
    if (extra->data)
        return cnn_fail(CNN_ERR_FORMAT, "%s: offset %zu: two '%.4s' sections", r->path, r->pos, extra->tag);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", r->path);
    memcpy(copy, r->p + r->pos, len);
    extra->data = copy;
    extra->len = len;
    return CNN_OK;
}

static int read_sections(reader *r, cnn_model **out, cnn_model_extra *extra)
{
    cnn_model *m = NULL;
    int rc = CNN_OK, done = 0, tensors = 0;
    while (!rc && !done) {
        if ((rc = need(r, 12, "a section header"))) break;
        size_t at = r->pos;
        uint32_t t = (uint32_t)get_le(r, 4);
        uint64_t len = get_le(r, 8);
        if (len > r->len - r->pos) {
            rc = cnn_fail(CNN_ERR_FORMAT, "%s: offset %zu: section of %llu bytes runs past the end", r->path,
                          at, (unsigned long long)len);
            break;
        }
        size_t end = r->pos + (size_t)len;
        if (t == tag("END!"))
            done = 1;
        else if (t == tag("ARCH") && !m)
            rc = parse_arch((const char *)r->p + r->pos, (size_t)len, r->path, &m);
        else if (t == tag("TENS") && m && !tensors++) {
            reader sub = *r;
            sub.len = end;
            rc = read_tensors(&sub, m);
            if (!rc && sub.pos != end)
                rc = cnn_fail(CNN_ERR_FORMAT, "%s: offset %zu: %zu stray bytes after the tensors", r->path,
                              sub.pos, end - sub.pos);
        } else if (t == tag("SPEC") && m && !m->spec_text) {
            rc = read_spec(r, (size_t)len, m);
        } else if (t == tag("LOSS") && m && !m->x.compiled) {
            rc = read_loss(r, (size_t)len, m);
        } else if (t == tag("OPTM") && m && tensors && !m->x.compiled) {
            reader sub = *r;
            sub.len = end;
            rc = read_optimizer(&sub, m);
            if (!rc && sub.pos != end)
                rc = cnn_fail(CNN_ERR_FORMAT, "%s: offset %zu: %zu stray bytes after the optimizer state",
                              r->path, sub.pos, end - sub.pos);
        } else if (extra && t == tag(extra->tag) && m) {
            rc = read_extra(r, (size_t)len, extra);
        } else if (t == tag("TENS") || t == tag("ARCH") || t == tag("SPEC") || t == tag("OPTM"))
            rc = cnn_fail(CNN_ERR_FORMAT, "%s: offset %zu: section out of order", r->path, at);
        r->pos = end;
    }
    if (!rc && !m) rc = cnn_fail(CNN_ERR_FORMAT, "%s: no architecture section", r->path);
    /* Without it the parameters would silently be the fresh initialisation. */
    if (!rc && !tensors && m->nparams)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: no tensor section (the model has %zu parameters)", r->path,
                      m->nparams);
    if (!rc && r->pos != r->len)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: offset %zu: bytes after the end marker", r->path, r->pos);
    if (rc) cnn_model_free(m);
    *out = rc ? NULL : m;
    return rc;
}

cnn_model *cnn_model_load(const char *path)
{
    return cnn_model_load_extra(path, NULL);
}

cnn_model *cnn_model_load_extra(const char *path, cnn_model_extra *extra)
{
    char *data = NULL;
    size_t len = 0;
    if (extra) extra->data = NULL, extra->len = 0;
    /* Only a regular file (cnn_read_file): a FIFO named as the model would block the reader forever. */
    if (cnn_read_file(path, &data, &len, MAX_FILE)) return NULL;
    reader r = {(const uint8_t *)data, len, 0, path};
    cnn_model *m = NULL;
    if (!check_envelope(&r)) read_sections(&r, &m, extra);
    free(data);
    if (!m && extra) free(extra->data), extra->data = NULL;
    return m;
}
