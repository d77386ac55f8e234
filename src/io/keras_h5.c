/* Keras's legacy HDF5 weight files through libhdf5.
 *
 * Layout (keras/src/saving/legacy/hdf5_format.py, and the older files Keras downloads for its applications):
 * the root (or its group "model_weights" in a whole-model file) has the attribute layer_names, split into
 * layer_names0, layer_names1, ... when it outgrew an HDF5 object header; each layer has a group of that name
 * whose attribute weight_names lists its datasets, relative to the group. Newer files name them
 * "<layer>/kernel:0" (a nested model's group lists every inner layer's), older ones "block1_conv1_W_1:0".
 * Strings come fixed-length (NumPy bytes) or variable-length (h5py str), and both are read.
 *
 * Every file is treated as hostile: each name, dtype and shape is checked against the model before anything
 * is copied into it, and libhdf5's own error printing is silenced so that failures come back only as
 * cnnlab errors naming the file, the group and the dataset. */
#include "io/keras_h5.h"

#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/isolate.h"

enum { MAX_NAMES = 1 << 16, MAX_NAME = 256, MAX_FIXED = 4096 };

/* ---------------------------------------------------------------- libhdf5 quietly */

typedef struct h5_quiet {
    H5E_auto2_t fn;
    void *data;
} h5_quiet;

/* libhdf5 prints its error stack to stderr by default; a library must not print, so the handler is off
 * while cnnlab works on a file and restored afterwards for a caller who uses libhdf5 too. */
static void quiet_begin(h5_quiet *q)
{
    H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void quiet_end(const h5_quiet *q)
{
    H5Eset_auto2(H5E_DEFAULT, q->fn, q->data);
}

static void close_id(hid_t id, herr_t (*fn)(hid_t))
{
    if (id >= 0) fn(id);
}

/* ---------------------------------------------------------------- string attributes */

typedef struct strlist {
    char **s;
    int n;
} strlist;

static void strlist_free(strlist *l)
{
    for (int i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    l->s = NULL;
    l->n = 0;
}

static int strlist_add(strlist *l, const char *s, size_t len, const char *where, const char *attr)
{
    if (len == 0 || len >= MAX_NAME || memchr(s, '\0', len))
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: attribute '%s' holds an empty or overlong name (at most %d bytes)", where, attr,
                        MAX_NAME - 1);
    char **grown = realloc(l->s, sizeof *grown * (size_t)(l->n + 1));
    char *copy = malloc(len + 1);
    if (grown) l->s = grown;
    if (!grown || !copy) {
        free(copy);
        return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", where);
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    l->s[l->n++] = copy;
    return CNN_OK;
}

static int read_vlen(hid_t a, hid_t type, hid_t space, int n, strlist *out, const char *where,
                     const char *attr)
{
    hid_t mem = H5Tcopy(H5T_C_S1);
    char **buf = calloc((size_t)n, sizeof *buf);
    int rc = CNN_OK;
    if (mem < 0 || !buf || H5Tset_size(mem, H5T_VARIABLE) < 0 || H5Tset_cset(mem, H5Tget_cset(type)) < 0 ||
        H5Aread(a, mem, buf) < 0)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: cannot read the strings of attribute '%s'", where, attr);
    for (int i = 0; !rc && i < n; i++)
        rc = buf[i] ? strlist_add(out, buf[i], strlen(buf[i]), where, attr)
                    : cnn_fail(CNN_ERR_FORMAT, "%s: attribute '%s' has a null string", where, attr);
    if (buf && mem >= 0) H5Dvlen_reclaim(mem, space, H5P_DEFAULT, buf);
    free(buf);
    close_id(mem, H5Tclose);
    return rc;
}

static int read_fixed(hid_t a, hid_t type, int n, strlist *out, const char *where, const char *attr)
{
    size_t size = H5Tget_size(type);
    if (size == 0 || size > MAX_FIXED)
        return cnn_fail(CNN_ERR_FORMAT, "%s: attribute '%s' has strings of %zu bytes", where, attr, size);
    hid_t mem = H5Tcopy(H5T_C_S1);
    char *buf = calloc((size_t)n, size);
    int rc = CNN_OK;
    if (mem < 0 || !buf || H5Tset_size(mem, size) < 0 || H5Tset_strpad(mem, H5T_STR_NULLPAD) < 0 ||
        H5Tset_cset(mem, H5Tget_cset(type)) < 0 || H5Aread(a, mem, buf) < 0)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: cannot read the strings of attribute '%s'", where, attr);
    for (int i = 0; !rc && i < n; i++) {
        const char *s = buf + (size_t)i * size;
        rc = strlist_add(out, s, strnlen(s, size), where, attr);
    }
    free(buf);
    close_id(mem, H5Tclose);
    return rc;
}

/* Appends the strings of attribute attr of obj to out. An empty attribute of any type is an empty list:
 * Keras writes a layer without weights as np.asarray([]), a float64 array of length 0. */
static int read_strings(hid_t obj, const char *attr, strlist *out, const char *where)
{
    hid_t a = H5Aopen(obj, attr, H5P_DEFAULT);
    if (a < 0) return cnn_fail(CNN_ERR_FORMAT, "%s: no attribute '%s'", where, attr);
    hid_t type = H5Aget_type(a), space = H5Aget_space(a);
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    int rc = CNN_OK;
    if (type < 0 || n < 0 || rank < 0 || rank > 1 || n > MAX_NAMES)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: attribute '%s' is not a list of names", where, attr);
    else if (n > 0 && H5Tget_class(type) != H5T_STRING)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: attribute '%s' is not a list of strings", where, attr);
    else if (n > 0 && H5Tis_variable_str(type) > 0)
        rc = read_vlen(a, type, space, (int)n, out, where, attr);
    else if (n > 0)
        rc = read_fixed(a, type, (int)n, out, where, attr);
    close_id(space, H5Sclose);
    close_id(type, H5Tclose);
    H5Aclose(a);
    return rc;
}

/* layer_names, or its pieces layer_names0, layer_names1, ... in order. */
static int read_layer_names(hid_t root, strlist *out, const char *where)
{
    if (H5Aexists(root, "layer_names") > 0) return read_strings(root, "layer_names", out, where);
    if (H5Aexists(root, "layer_names0") <= 0)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: no attribute 'layer_names' (not a weights file written by Keras's save_weights)",
                        where);
    char attr[32];
    int rc = CNN_OK;
    for (int k = 0; !rc && k < MAX_NAMES; k++) {
        snprintf(attr, sizeof attr, "layer_names%d", k);
        if (H5Aexists(root, attr) <= 0) break;
        rc = read_strings(root, attr, out, where);
    }
    return rc;
}

/* ---------------------------------------------------------------- names */

/* "block1_conv1_W_1" -> "W" for layer "block1_conv1": the old files' weight names. */
static const char *old_style_weight(const char *layer, const char *name, char *buf, size_t cap)
{
    size_t n = strlen(layer);
    if (strncmp(name, layer, n) || name[n] != '_') return NULL;
    snprintf(buf, cap, "%s", name + n + 1);
    char *u = strrchr(buf, '_');
    if (u && u[1] && strspn(u + 1, "0123456789") == strlen(u + 1)) *u = '\0';
    if (!strcmp(buf, "W")) return "kernel";
    if (!strcmp(buf, "b")) return "bias";
    return buf;
}

/* The model tensor a dataset of group `group` is for: "<layer>/<weight>". Keras names it
 * "<layer>/<weight>:0" (the last two parts count: a nested model's group lists its inner layers'),
 * "<weight>:0", or in old files "<layer>_W_1:0". */
static int tensor_name(const char *group, const char *dataset, char *out, size_t cap)
{
    char name[MAX_NAME], buf[MAX_NAME];
    snprintf(name, sizeof name, "%s", dataset);
    char *colon = strrchr(name, ':');
    if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) *colon = '\0';
    char *slash = strrchr(name, '/');
    if (slash) {
        *slash = '\0';
        const char *layer = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
        return snprintf(out, cap, "%s/%s", layer, slash + 1) < (int)cap ? CNN_OK : CNN_ERR_FORMAT;
    }
    const char *w = old_style_weight(group, name, buf, sizeof buf);
    return snprintf(out, cap, "%s/%s", group, w ? w : name) < (int)cap ? CNN_OK : CNN_ERR_FORMAT;
}

/* ---------------------------------------------------------------- loading */

typedef struct staged {
    cnn_tensor t;
    float *values;
} staged;

typedef struct loader {
    cnn_model *m;
    const char *path;
    int first, count;
    staged *items;
    int n, cap;
} loader;

static const char *dtype_text(hid_t type)
{
    static const char *const floats[] = {"float16", "float32", "float64"};
    size_t size = H5Tget_size(type);
    switch (H5Tget_class(type)) {
    case H5T_FLOAT:
        return size == 2 ? floats[0] : size == 4 ? floats[1] : size == 8 ? floats[2] : "float";
    case H5T_INTEGER:
        return "an integer type";
    case H5T_STRING:
        return "string";
    default:
        return "a non-numeric type";
    }
}

static int check_dataset(hid_t ds, const cnn_tensor *t, const char *where)
{
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    hsize_t dims[8] = {0};
    int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    int rc = CNN_OK;
    if (type < 0 || rank < 0 || rank > 8 || H5Sget_simple_extent_dims(space, dims, NULL) < 0)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: unreadable type or shape", where);
    else if (H5Tget_class(type) != H5T_FLOAT || H5Tget_size(type) != 4)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: dtype %s, expected float32", where, dtype_text(type));
    int same = !rc && rank == t->rank;
    for (int i = 0; same && i < rank; i++) same = dims[i] == (hsize_t)t->dim[i];
    if (!rc && !same) {
        char got[96] = "(", want[96] = "(";
        for (int i = 0; i < rank; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? ", " : "",
                     (unsigned long long)dims[i]);
        for (int i = 0; i < t->rank; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", i ? ", " : "", t->dim[i]);
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: shape %s), but the model's %s is %s)", where, got, t->name, want);
    }
    close_id(space, H5Sclose);
    close_id(type, H5Tclose);
    return rc;
}

static int find_target(loader *L, const char *group, const char *dataset, cnn_tensor *t, const char *where)
{
    char name[sizeof t->name];
    if (tensor_name(group, dataset, name, sizeof name) || cnn_model_find_tensor(L->m, name, t))
        return cnn_fail(CNN_ERR_FORMAT, "%s: model '%s' has no tensor '%s' for it", where,
                        cnn_model_name(L->m), name);
    if (t->layer < L->first || t->layer >= L->first + L->count)
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s' is outside the layers being loaded", where, t->name);
    for (int i = 0; i < L->n; i++)
        if (!strcmp(L->items[i].t.name, t->name))
            return cnn_fail(CNN_ERR_FORMAT, "%s: a second dataset for tensor '%s'", where, t->name);
    return CNN_OK;
}

static int stage(loader *L, const cnn_tensor *t, float *values)
{
    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 32;
        staged *grown = realloc(L->items, sizeof *grown * (size_t)cap);
        if (!grown) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", L->path);
        L->items = grown;
        L->cap = cap;
    }
    L->items[L->n++] = (staged){*t, values};
    return CNN_OK;
}

/* Reads dataset `dataset` of group g (layer `group`) into a staging buffer after checking it. */
static int load_dataset(loader *L, hid_t g, const char *group, const char *dataset)
{
    char where[3 * MAX_NAME + 64];
    snprintf(where, sizeof where, "%s: group '%s', dataset '%s'", L->path, group, dataset);
    cnn_tensor t;
    int rc = find_target(L, group, dataset, &t, where);
    if (rc) return rc;
    hid_t ds = H5Dopen2(g, dataset, H5P_DEFAULT);
    if (ds < 0) return cnn_fail(CNN_ERR_FORMAT, "%s: no such dataset (listed in weight_names)", where);
    float *values = NULL;
    rc = check_dataset(ds, &t, where);
    if (!rc && !(values = malloc(t.size * sizeof *values)))
        rc = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", where);
    if (!rc && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: the values cannot be read (file truncated or damaged)", where);
    if (!rc) rc = stage(L, &t, values);
    if (rc) free(values);
    H5Dclose(ds);
    return rc;
}

static int load_group(loader *L, hid_t root, const char *group)
{
    char where[MAX_NAME + 4200];
    snprintf(where, sizeof where, "%s: group '%s'", L->path, group);
    if (H5Lexists(root, group, H5P_DEFAULT) <= 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: no such group (listed in layer_names)", where);
    hid_t g = H5Gopen2(root, group, H5P_DEFAULT);
    if (g < 0) return cnn_fail(CNN_ERR_FORMAT, "%s: not a readable group", where);
    strlist names = {0};
    int rc = read_strings(g, "weight_names", &names, where);
    for (int i = 0; !rc && i < names.n; i++) rc = load_dataset(L, g, group, names.s[i]);
    strlist_free(&names);
    H5Gclose(g);
    return rc;
}

/* Every tensor of the layers being loaded must have come from the file. */
static int check_complete(const loader *L)
{
    int n = cnn_model_num_tensors(L->m);
    for (int i = 0; i < n; i++) {
        cnn_tensor t;
        if (cnn_model_tensor(L->m, i, &t)) return cnn_errcode();
        if (t.layer < L->first || t.layer >= L->first + L->count) continue;
        int found = 0;
        for (int k = 0; k < L->n && !found; k++) found = !strcmp(L->items[k].t.name, t.name);
        if (!found)
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: no weights for the model's tensor '%s' (layer '%s' is missing)", L->path,
                            t.name, cnn_model_layer_name(L->m, t.layer));
    }
    return CNN_OK;
}

/* The group that holds layer_names: the root, or "model_weights" in a file written by model.save(). */
static hid_t weights_root(hid_t file)
{
    if (H5Aexists(file, "layer_names") <= 0 && H5Aexists(file, "layer_names0") <= 0 &&
        H5Lexists(file, "model_weights", H5P_DEFAULT) > 0)
        return H5Gopen2(file, "model_weights", H5P_DEFAULT);
    return H5Gopen2(file, "/", H5P_DEFAULT);
}

static int load_file(loader *L)
{
    if (H5Fis_hdf5(L->path) <= 0) {
        struct stat st;
        if (stat(L->path, &st)) return cnn_fail(CNN_ERR_IO, "%s: cannot open the file", L->path);
        return cnn_fail(CNN_ERR_FORMAT, "%s: not an HDF5 file", L->path);
    }
    hid_t file = H5Fopen(L->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: cannot open it as HDF5 (truncated or damaged?)", L->path);
    hid_t root = weights_root(file);
    strlist layers = {0};
    int rc = root < 0 ? cnn_fail(CNN_ERR_FORMAT, "%s: cannot open the root group", L->path)
                      : read_layer_names(root, &layers, L->path);
    for (int i = 0; !rc && i < layers.n; i++) rc = load_group(L, root, layers.s[i]);
    if (!rc) rc = check_complete(L);
    strlist_free(&layers);
    close_id(root, H5Gclose);
    H5Fclose(file);
    return rc;
}

/* In the child: parses the file and sends every checked tensor as [name][float count][values]. */
static int load_and_send(void *arg, cnn_strbuf *out)
{
    loader *L = arg;
    h5_quiet q;
    quiet_begin(&q);
    int rc = load_file(L);
    quiet_end(&q);
    for (int i = 0; !rc && i < L->n; i++) {
        uint64_t size = L->items[i].t.size;
        cnn_strbuf_append(out, L->items[i].t.name, sizeof L->items[i].t.name);
        cnn_strbuf_append(out, &size, sizeof size);
        cnn_strbuf_append(out, L->items[i].values, size * sizeof(float));
    }
    return rc;
}

/* In the parent: checks the child's records against the model, then copies them all in. */
static int receive(cnn_model *m, const char *path, const cnn_strbuf *in)
{
    cnn_tensor t;
    char name[sizeof t.name];
    uint64_t size;
    for (int pass = 0; pass < 2; pass++)
        for (size_t at = 0; at < in->len; at += sizeof name + sizeof size + size * sizeof(float)) {
            if (in->len - at < sizeof name + sizeof size)
                return cnn_fail(CNN_ERR_FORMAT, "%s: reader output cut short", path);
            memcpy(name, in->data + at, sizeof name);
            memcpy(&size, in->data + at + sizeof name, sizeof size);
            name[sizeof name - 1] = '\0';
            if (cnn_model_find_tensor(m, name, &t) || size != t.size ||
                (in->len - at - sizeof name - sizeof size) / sizeof(float) < size)
                return cnn_fail(CNN_ERR_FORMAT, "%s: reader output does not fit tensor '%s'", path, name);
            if (pass) memcpy(t.data, in->data + at + sizeof name + sizeof size, size * sizeof(float));
        }
    return CNN_OK;
}

int cnn_keras_h5_load_layers(cnn_model *m, const char *path, int first, int count)
{
    if (!m || !path) return cnn_fail(CNN_ERR_INVALID, "keras weights: NULL model or path");
    if (cnn_model_num_tensors(m) <= 0)
        return cnn_fail(CNN_ERR_STATE, "%s: model '%s' must be built before loading weights", path,
                        cnn_model_name(m));
    /* libhdf5 1.10 can crash or hang on a damaged file (a mutated datatype sends H5Aread into the global
     * heap at garbage offsets), so the file is parsed in a child process; the model changes only here. */
    loader L = {.m = m, .path = path, .first = first, .count = count};
    cnn_strbuf got = {0};
    int rc = cnn_run_isolated(load_and_send, &L, 60, path, &got);
    if (!rc) rc = receive(m, path, &got);
    for (int i = 0; i < L.n; i++) free(L.items[i].values);
    free(L.items);
    cnn_strbuf_free(&got);
    return rc;
}

int cnn_model_load_keras_weights(cnn_model *m, const char *path)
{
    return cnn_keras_h5_load_layers(m, path, 0, m ? cnn_model_num_layers(m) : 0);
}

/* ---------------------------------------------------------------- saving */

/* A string attribute as NumPy writes a bytes array (fixed-length, NUL-padded), as Keras's own files have;
 * an empty list is written as Keras writes it, a float64 array of length 0. */
static herr_t write_strings(hid_t obj, const char *attr, char *const *s, int n, int scalar)
{
    size_t width = 1;
    for (int i = 0; i < n; i++) width = strlen(s[i]) > width ? strlen(s[i]) : width;
    hsize_t dim = (hsize_t)n;
    hid_t space = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    hid_t type = n ? H5Tcopy(H5T_C_S1) : H5Tcopy(H5T_IEEE_F64LE);
    char *buf = calloc(n ? (size_t)n : 1, width);
    herr_t rc = space < 0 || type < 0 || !buf ? -1 : 0;
    if (!rc && n) rc = H5Tset_size(type, width) < 0 || H5Tset_strpad(type, H5T_STR_NULLPAD) < 0 ? -1 : 0;
    for (int i = 0; !rc && i < n; i++) memcpy(buf + (size_t)i * width, s[i], strlen(s[i]));
    hid_t a = rc ? -1 : H5Acreate2(obj, attr, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, type, buf) < 0) rc = -1;
    close_id(a, H5Aclose);
    close_id(type, H5Tclose);
    close_id(space, H5Sclose);
    free(buf);
    return rc;
}

static herr_t write_dataset(hid_t g, const cnn_tensor *t, const char *name)
{
    hsize_t dims[4];
    for (int i = 0; i < t->rank; i++) dims[i] = (hsize_t)t->dim[i];
    hid_t space = H5Screate_simple(t->rank, dims, NULL), lcpl = H5Pcreate(H5P_LINK_CREATE);
    herr_t rc = space < 0 || lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0 ? -1 : 0;
    hid_t ds = rc ? -1 : H5Dcreate2(g, name, H5T_IEEE_F32LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->data) < 0) rc = -1;
    close_id(ds, H5Dclose);
    close_id(lcpl, H5Pclose);
    close_id(space, H5Sclose);
    return rc;
}

/* One top-level Keras layer: the tensors of model layers [first, first + count), listed as Keras's
 * _legacy_weights lists them (trainable ones first), which is the order Keras's load_weights assigns. */
static int write_entry(cnn_model *m, hid_t file, const char *name, int first, int count)
{
    int nt = cnn_model_num_tensors(m), n = 0;
    char **names = calloc((size_t)nt + 1, sizeof *names);
    cnn_tensor *ts = calloc((size_t)nt + 1, sizeof *ts);
    hid_t g = H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = !names || !ts || g < 0 ? -1 : 0;
    for (int pass = 1; !rc && pass >= 0; pass--)
        for (int i = 0; !rc && i < nt; i++) {
            cnn_tensor t;
            rc = cnn_model_tensor(m, i, &t);
            if (rc || t.layer < first || t.layer >= first + count || t.trainable != pass) continue;
            ts[n] = t;
            names[n] = malloc(sizeof t.name + 2);
            if (!names[n])
                rc = -1;
            else
                snprintf(names[n++], sizeof t.name + 2, "%s:0", t.name);
        }
    if (!rc) rc = write_strings(g, "weight_names", names, n, 0) < 0 ? -1 : 0;
    for (int i = 0; !rc && i < n; i++) rc = write_dataset(g, &ts[i], names[i]) < 0 ? -1 : 0;
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
    free(ts);
    close_id(g, H5Gclose);
    return rc;
}

/* The top-level layers Keras would see: a group of layers is one entry. */
static int top_entries(const cnn_model *m, const cnn_layer_group *groups, int ngroups, char **names,
                       int *first, int *count)
{
    int n = 0;
    for (int i = 0; i < cnn_model_num_layers(m);) {
        const cnn_layer_group *g = NULL;
        for (int k = 0; k < ngroups; k++)
            if (groups[k].first == i && groups[k].count > 0) g = &groups[k];
        names[n] = (char *)(g ? g->name : cnn_model_layer_name(m, i));
        first[n] = i;
        count[n] = g ? g->count : 1;
        i += count[n++];
    }
    return n;
}

static int write_model(cnn_model *m, const cnn_layer_group *groups, int ngroups, hid_t file)
{
    int nl = cnn_model_num_layers(m);
    char **names = calloc((size_t)nl + 1, sizeof *names);
    int *first = calloc((size_t)nl + 1, sizeof *first), *count = calloc((size_t)nl + 1, sizeof *count);
    int rc = names && first && count ? 0 : -1;
    int n = rc ? 0 : top_entries(m, groups, ngroups, names, first, count);
    char *backend = "tensorflow", *version = "2.15.0";
    if (!rc)
        rc = write_strings(file, "layer_names", names, n, 0) < 0 ||
                     write_strings(file, "backend", &backend, 1, 1) < 0 ||
                     write_strings(file, "keras_version", &version, 1, 1) < 0
                 ? -1
                 : 0;
    for (int i = 0; !rc && i < n; i++) rc = write_entry(m, file, names[i], first[i], count[i]);
    free(names);
    free(first);
    free(count);
    return rc;
}

/* Builds the file in memory (libhdf5's core driver) and writes its image atomically. */
static int save_image(cnn_model *m, const cnn_layer_group *groups, int ngroups, const char *path)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 20, 0) < 0) {
        close_id(fapl, H5Pclose);
        return cnn_fail(CNN_ERR_NOMEM, "%s: cannot set up an in-memory HDF5 file", path);
    }
    hid_t file = H5Fcreate("cnnlab-keras-weights.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    int rc = file < 0 || write_model(m, groups, ngroups, file) || H5Fflush(file, H5F_SCOPE_GLOBAL) < 0;
    ssize_t size = rc ? -1 : H5Fget_file_image(file, NULL, 0);
    void *image = size > 0 ? malloc((size_t)size) : NULL;
    if (!image || H5Fget_file_image(file, image, (size_t)size) != size) rc = 1;
    close_id(file, H5Fclose);
    H5Pclose(fapl);
    if (rc) {
        free(image);
        return cnn_fail(CNN_ERR_NOMEM, "%s: libhdf5 could not build the weights file (out of memory?)", path);
    }
    rc = cnn_write_file_atomic(path, image, (size_t)size);
    free(image);
    return rc;
}

int cnn_model_save_keras_weights(cnn_model *m, const cnn_layer_group *groups, int ngroups, const char *path)
{
    if (!m || !path || ngroups < 0 || (ngroups && !groups))
        return cnn_fail(CNN_ERR_INVALID, "keras weights: NULL model, path or groups");
    if (cnn_model_num_tensors(m) <= 0)
        return cnn_fail(CNN_ERR_STATE, "%s: model '%s' is not built", path, cnn_model_name(m));
    for (int k = 0; k < ngroups; k++)
        if (groups[k].first < 0 || groups[k].count < 1 ||
            groups[k].first + groups[k].count > cnn_model_num_layers(m))
            return cnn_fail(CNN_ERR_INVALID, "%s: group '%s' covers layers outside the model", path,
                            groups[k].name);
    struct stat st;
    if (!lstat(path, &st) && !S_ISREG(st.st_mode))
        return cnn_fail(CNN_ERR_IO, "%s: exists and is not a regular file; not overwritten", path);
    h5_quiet q;
    quiet_begin(&q);
    int rc = save_image(m, groups, ngroups, path);
    quiet_end(&q);
    return rc;
}
