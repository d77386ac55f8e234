#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cnnlab.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/idx.h"

static int check_counts(const cnn_idx *img, const cnn_idx *lab, const char *images_path,
                        const char *labels_path)
{
    if (lab->dims[0] == img->dims[0]) return 0;
    return cnn_fail(CNN_ERR_FORMAT, "%s: offset 4%s: %d labels, expected %d to match the images of %s",
                    labels_path, lab->gzip ? " (decompressed)" : "", lab->dims[0], img->dims[0], images_path);
}

/* lab may be NULL: images without labels (every label -1, "unknown"). The pixels are kept as the file's
 * bytes: cnn_dataset_sample converts them, one sample at a time, as batches are filled. */
static int fill(cnn_dataset *ds, cnn_idx *img, const cnn_idx *lab)
{
    size_t n = (size_t)img->dims[0];
    int32_t *y = malloc(n * sizeof *y);
    if (!y)
        return cnn_fail(CNN_ERR_NOMEM, "out of memory for the labels of %d images of %d x %d", img->dims[0],
                        img->dims[1], img->dims[2]);
    /* The dataset takes the reader's buffer over, trimmed to the payload (gzip reads grow it by doubling). */
    uint8_t *bytes = img->data, *trimmed = realloc(bytes, img->size);
    if (trimmed) bytes = trimmed;
    img->data = NULL;
    int32_t top = -1;
    for (size_t i = 0; i < n; i++) {
        y[i] = lab ? lab->data[i] : -1;
        if (y[i] > top) top = y[i];
    }
    *ds = (cnn_dataset){.bytes = bytes,
                        .divisor = 255.0f,
                        .y = y,
                        .n = img->dims[0],
                        .h = img->dims[1],
                        .w = img->dims[2],
                        .c = 1,
                        .num_classes = top + 1};
    return 0;
}

int cnn_dataset_has_pixels(const cnn_dataset *ds)
{
    if (ds->x) return !ds->bytes;
    return ds->bytes && isfinite(ds->divisor) && ds->divisor > 0.0f;
}

void cnn_dataset_sample(const cnn_dataset *ds, size_t i, float *out)
{
    const size_t size = cnn_dataset_sample_size(ds);
    if (ds->x) {
        memcpy(out, ds->x + size * i, sizeof(float) * size);
        return;
    }
    /* Division, not multiplication by 1/divisor, so that pixels equal Keras's x.astype('float32') / 255 bit
     * for bit. */
    const uint8_t *b = ds->bytes + size * i;
    const float d = ds->divisor;
    for (size_t j = 0; j < size; j++) out[j] = (float)b[j] / d;
}

int cnn_dataset_images(const cnn_dataset *ds, int start, int count, float *out)
{
    if (!ds || !out) return cnn_fail(CNN_ERR_INVALID, "dataset images: the dataset or out is NULL");
    if (!cnn_dataset_has_pixels(ds) || ds->n < 1 || ds->h < 1 || ds->w < 1 || ds->c < 1)
        return cnn_fail(CNN_ERR_INVALID,
                        "dataset images: the dataset is empty or malformed (n %d, %d x %d x %d)", ds->n,
                        ds->h, ds->w, ds->c);
    if (start < 0 || count < 1 || start > ds->n - count)
        return cnn_fail(CNN_ERR_INVALID,
                        "dataset images: %d images from index %d, expected a range within [0, %d)", count,
                        start, ds->n);
    const size_t size = cnn_dataset_sample_size(ds);
    for (int i = 0; i < count; i++) cnn_dataset_sample(ds, (size_t)(start + i), out + size * (size_t)i);
    return 0;
}

int cnn_dataset_load_idx(cnn_dataset *ds, const char *images_path, const char *labels_path)
{
    if (!ds) return cnn_fail(CNN_ERR_INVALID, "loading IDX files: the dataset is NULL");
    memset(ds, 0, sizeof *ds);
    if (!images_path) return cnn_fail(CNN_ERR_INVALID, "loading IDX files: the images path is NULL");
    cnn_idx img = {0}, lab = {0};
    int rc = cnn_idx_read(images_path, CNN_IDX_IMAGES, &img);
    if (!rc && labels_path) rc = cnn_idx_read(labels_path, CNN_IDX_LABELS, &lab);
    if (!rc && labels_path) rc = check_counts(&img, &lab, images_path, labels_path);
    if (!rc) rc = fill(ds, &img, labels_path ? &lab : NULL);
    cnn_idx_free(&img);
    cnn_idx_free(&lab);
    return rc;
}

/* Picks dir/NAME, else dir/NAME.gz; *path is allocated. */
static int find_file(const char *dir, const char *name, char **path)
{
    size_t dlen = strlen(dir), len = dlen + strlen(name) + 5;
    const char *sep = dlen && dir[dlen - 1] == '/' ? "" : "/";
    char *plain = malloc(len), *gz = malloc(len);
    int rc = 0;
    if (!plain || !gz) {
        rc = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", dir);
        goto done;
    }
    snprintf(plain, len, "%s%s%s", dir, sep, name);
    snprintf(gz, len, "%s%s%s.gz", dir, sep, name);
    struct stat st;
    if (stat(plain, &st) == 0) {
        *path = plain;
        plain = NULL;
    } else if (stat(gz, &st) == 0) {
        *path = gz;
        gz = NULL;
    } else {
        rc = cnn_fail(CNN_ERR_IO, "%s: neither %s nor %s.gz can be found there (%s)", dir, name, name,
                      strerror(errno));
    }
done:
    free(plain);
    free(gz);
    return rc;
}

static int load_pair(const char *dir, const char *images_name, const char *labels_name, cnn_dataset *ds)
{
    char *images = NULL, *labels = NULL;
    int rc = find_file(dir, images_name, &images);
    if (!rc) rc = find_file(dir, labels_name, &labels);
    if (!rc) rc = cnn_dataset_load_idx(ds, images, labels);
    free(images);
    free(labels);
    return rc;
}

int cnn_dataset_load_dir(const char *dir, cnn_dataset *train, cnn_dataset *test)
{
    if (!test || train == test)
        return cnn_fail(CNN_ERR_INVALID, "loading a dataset folder: test (and train, unless NULL) must be "
                                         "distinct datasets");
    if (train) memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (!dir) return cnn_fail(CNN_ERR_INVALID, "loading a dataset folder: the folder is NULL");
    /* Without train only the t10k files are read: eval and predict need nothing else. */
    int rc = train ? load_pair(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", train) : 0;
    if (!rc) rc = load_pair(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", test);
    if (rc) {
        if (train) cnn_dataset_free(train);
        return rc;
    }
    if (!train) return 0;
    if (train->h != test->h || train->w != test->w) {
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: the t10k images are %dx%d, the training images %dx%d", dir,
                      test->h, test->w, train->h, train->w);
        cnn_dataset_free(train);
        cnn_dataset_free(test);
        return rc;
    }
    /* A test set lacking the top class must still agree with the training set on the class count. */
    int classes = train->num_classes > test->num_classes ? train->num_classes : test->num_classes;
    train->num_classes = test->num_classes = classes;
    return 0;
}

static int check_dataset(const cnn_dataset *ds, const char *fn)
{
    if (!ds) return cnn_fail(CNN_ERR_INVALID, "%s: source dataset is NULL", fn);
    if (!cnn_dataset_has_pixels(ds) || !ds->y || ds->n < 1 || ds->h < 1 || ds->w < 1 || ds->c < 1)
        return cnn_fail(CNN_ERR_INVALID, "%s: source dataset is empty or malformed (n %d, %d x %d x %d)", fn,
                        ds->n, ds->h, ds->w, ds->c);
    return 0;
}

int cnn_dataset_slice(const cnn_dataset *src, int start, int count, cnn_dataset *dst)
{
    if (!dst || dst == src)
        return cnn_fail(CNN_ERR_INVALID, "dataset slice: dst must be a dataset distinct from src");
    memset(dst, 0, sizeof *dst);
    int rc = check_dataset(src, "dataset slice");
    if (rc) return rc;
    if (start < 0 || count < 1 || start > src->n - count)
        return cnn_fail(CNN_ERR_INVALID,
                        "dataset slice: %d samples from index %d, expected a non-empty range within [0, %d)",
                        count, start, src->n);
    size_t per = cnn_dataset_sample_size(src), from = (size_t)start * per, len = (size_t)count * per;
    float *x = src->x ? malloc(len * sizeof *x) : NULL;
    uint8_t *bytes = src->x ? NULL : malloc(len);
    int32_t *y = malloc((size_t)count * sizeof *y);
    if ((!x && !bytes) || !y) {
        free(x);
        free(bytes);
        free(y);
        return cnn_fail(CNN_ERR_NOMEM, "dataset slice: out of memory for %d samples", count);
    }
    if (x) memcpy(x, src->x + from, len * sizeof *x);
    if (bytes) memcpy(bytes, src->bytes + from, len);
    memcpy(y, src->y + start, (size_t)count * sizeof *y);
    *dst = *src;
    dst->x = x, dst->bytes = bytes, dst->y = y, dst->n = count;
    return 0;
}

int cnn_dataset_split(const cnn_dataset *src, double fraction, cnn_dataset *train, cnn_dataset *val)
{
    if (!train || !val || train == val || train == src || val == src)
        return cnn_fail(CNN_ERR_INVALID,
                        "validation split: train and val must be two datasets distinct from src");
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    int rc = check_dataset(src, "validation split");
    if (rc) return rc;
    if (!(fraction > 0.0 && fraction < 1.0))
        return cnn_fail(CNN_ERR_INVALID,
                        "validation split: validation fraction %g, expected a number in (0, 1)", fraction);
    /* Keras's own rounding: split_at = floor(n * (1 - validation_split)). */
    int at = (int)floor((double)src->n * (1.0 - fraction));
    if (at < 1 || at >= src->n)
        return cnn_fail(
            CNN_ERR_INVALID,
            "validation split: validation fraction %g of %d samples leaves %d for training and %d for "
            "validation, expected both non-empty",
            fraction, src->n, at, src->n - at);
    rc = cnn_dataset_slice(src, 0, at, train);
    if (!rc) rc = cnn_dataset_slice(src, at, src->n - at, val);
    if (rc) cnn_dataset_free(train);
    return rc;
}

void cnn_dataset_free(cnn_dataset *ds)
{
    if (!ds) return;
    free(ds->x);
    free(ds->bytes);
    free(ds->y);
    memset(ds, 0, sizeof *ds);
}

const char *cnn_fashion_class_name(int label)
{
    static const char *const names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return label >= 0 && label < 10 ? names[label] : NULL;
}
