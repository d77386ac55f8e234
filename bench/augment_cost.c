/* What augmentation adds to training: Model_2_s2's training epoch (Fashion-MNIST, batch 512, Adam, no
 * validation) on
 *   plain    the images as they are (118 batches),
 *   studygen the study's generator (spec §5.2: 235 batches, 118 of them augmented once and memoised): its
 *            first epoch, which makes the augmented set, and its second, which reuses it,
 *   keras    online Keras-style augmentation, new every epoch: rotation 10°, shifts 0.1, zoom 0.1, nearest
 *            fill, then random erasing (p 0.5, random values) — the bilinear resampling path,
 *   m11aug   online augmentation of models/extra/Model_11_aug.spec: flip, 2-pixel pad-and-crop, erasing.
 * Every variant trains through cnn_model_fit_source, as `cnnlab train` does, with the same thread count; the
 * variants are interleaved within each repeat (plain, studygen x2, keras, m11aug, plain, ...) so that the
 * load of a shared machine hits them alike. Each source is wrapped to time its fill calls: fill time is what
 * the batches cost to make (augmentation + copies); the rest of the epoch is training.
 *
 *   make && build/bench/augment_cost [threads (2)] [repeats (3)] [images (60000)]
 *
 * It first prints each transform's CPU cost per sample on one thread (SAMPLE); repeats 0 stops there.
 *
 * images < 60000 trains on the first images only (whole batches of 512): the per-batch figures hold, in a
 * fraction of the time, when the machine is too loaded for whole epochs.
 *
 * Prints an EPOCH line as each epoch ends, a RUN line per variant and repeat, then MEDIAN lines (per batch,
 * wall and process CPU time) and the shares: each variant's time per batch against the plain epoch's, the
 * augmentation's own cost (its fill time over the plain fill, against a plain batch) and the generator's
 * one-off making of its augmented set. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cnnlab.h"

enum { B = 512, VARIANTS = 5, MAX_REPEATS = 32 };
static const char *const NAMES[VARIANTS] = {"plain", "studygen_epoch1", "studygen_epoch2", "keras", "m11aug"};

/* The CPU time of this process (all its threads): on a shared machine it moves far less with other
 * processes' load than the wall clock. */
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A source that forwards to inner and adds the wall and CPU time of every fill to fill_s, fill_cpu. */
typedef struct timed {
    cnn_source base;
    cnn_source *inner;
    double fill_s, fill_cpu;
} timed;

static int timed_begin(cnn_source *s, int epoch)
{
    cnn_source *q = ((timed *)s->state)->inner;
    return q->begin_epoch ? q->begin_epoch(q, epoch) : 0;
}

static int timed_fill(cnn_source *s, int epoch, int batch, float *x, int32_t *y, int *n)
{
    timed *t = s->state;
    double t0 = omp_get_wtime(), c0 = cpu_now();
    int rc = t->inner->fill(t->inner, epoch, batch, x, y, n);
    t->fill_s += omp_get_wtime() - t0;
    t->fill_cpu += cpu_now() - c0;
    return rc;
}

static int timed_end(cnn_source *s, int epoch)
{
    cnn_source *q = ((timed *)s->state)->inner;
    return q->end_epoch ? q->end_epoch(q, epoch) : 0;
}

static void timed_wrap(timed *t, cnn_source *inner)
{
    t->base = *inner;
    t->base.state = t, t->inner = inner, t->fill_s = t->fill_cpu = 0;
    t->base.begin_epoch = timed_begin, t->base.fill = timed_fill, t->base.end_epoch = timed_end;
    t->base.destroy = NULL;
}

typedef struct sample {
    double epoch_s, fill_s, epoch_cpu, fill_cpu;
    int batches;
} sample;

/* One epoch of m on src, timed. */
static sample epoch_on(cnn_model *m, cnn_source *src)
{
    timed t;
    timed_wrap(&t, src);
    cnn_fit_config fc = cnn_fit_default();
    fc.epochs = 1, fc.verbose = CNN_VERBOSE_SILENT;
    cnn_history h = {0};
    double t0 = omp_get_wtime(), c0 = cpu_now();
    if (cnn_model_fit_source(m, &t.base, &fc, &h)) {
        fprintf(stderr, "fit: %s\n", cnn_errmsg());
        exit(1);
    }
    sample s = {omp_get_wtime() - t0, t.fill_s, cpu_now() - c0, t.fill_cpu, src->batches};
    cnn_history_free(&h);
    printf("EPOCH batches=%d epoch_s=%.3f fill_s=%.3f epoch_cpu_s=%.3f fill_cpu_s=%.3f\n", s.batches,
           s.epoch_s, s.fill_s, s.epoch_cpu, s.fill_cpu);
    fflush(stdout);
    return s;
}

static cnn_augment keras_style(void)
{
    cnn_augment a = cnn_augment_default();
    a.rotation_range = 10, a.width_shift_range = 0.1, a.height_shift_range = 0.1;
    a.zoom_range[0] = 0.9, a.zoom_range[1] = 1.1, a.fill_mode = CNN_FILL_NEAREST;
    a.erasing_p = 0.5;
    return a;
}

static cnn_augment model_11_aug(void)
{
    cnn_augment a = cnn_augment_default();
    a.horizontal_flip = 1, a.crop_padding = 2, a.erasing_p = 0.5, a.erasing_value = 0;
    return a;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One repeat: every variant once, in NAMES order, on the same model (the weights go on training; an epoch's
 * time does not depend on them). */
static void repeat(cnn_model *m, const cnn_dataset *train, int r, sample out[VARIANTS])
{
    static cnn_augment keras, m11;
    keras = keras_style(), m11 = model_11_aug();
    cnn_transform tk = cnn_augment_transform(&keras), tm = cnn_augment_transform(&m11);
    cnn_source *plain = cnn_source_dataset(train, B, 1, 1 + (uint64_t)r);
    cnn_source *gen = cnn_source_study_augment(train, B, 1, 1 + (uint64_t)r, 0);
    cnn_source *onk = cnn_source_transform(train, B, 1, 1 + (uint64_t)r, &tk);
    cnn_source *onm = cnn_source_transform(train, B, 1, 1 + (uint64_t)r, &tm);
    if (!plain || !gen || !onk || !onm) fprintf(stderr, "source: %s\n", cnn_errmsg()), exit(1);
    out[0] = epoch_on(m, plain);
    out[1] = epoch_on(m, gen); /* a fresh generator: this epoch makes the 118 augmented batches */
    out[2] = epoch_on(m, gen);
    out[3] = epoch_on(m, onk);
    out[4] = epoch_on(m, onm);
    for (int v = 0; v < VARIANTS; v++)
        printf("RUN repeat=%d variant=%s batches=%d epoch_s=%.3f fill_s=%.3f per_batch_ms=%.2f\n", r,
               NAMES[v], out[v].batches, out[v].epoch_s, out[v].fill_s,
               1e3 * out[v].epoch_s / out[v].batches);
    fflush(stdout);
    cnn_source_free(plain), cnn_source_free(gen), cnn_source_free(onk), cnn_source_free(onm);
}

/* Per-batch medians of variant k over the repeats: epoch and fill, wall and CPU seconds. */
typedef struct medians {
    double epoch_s, fill_s, epoch_cpu, fill_cpu;
} medians;

static medians medians_of(sample s[][VARIANTS], int repeats, int k)
{
    double v[4][MAX_REPEATS];
    for (int r = 0; r < repeats; r++) {
        double b = s[r][k].batches;
        v[0][r] = s[r][k].epoch_s / b, v[1][r] = s[r][k].fill_s / b;
        v[2][r] = s[r][k].epoch_cpu / b, v[3][r] = s[r][k].fill_cpu / b;
    }
    return (medians){median(v[0], repeats), median(v[1], repeats), median(v[2], repeats),
                     median(v[3], repeats)};
}

static void summarise(sample s[][VARIANTS], int repeats, int threads)
{
    medians m[VARIANTS];
    for (int k = 0; k < VARIANTS; k++) {
        m[k] = medians_of(s, repeats, k);
        printf("MEDIAN variant=%s threads=%d per_batch_ms=%.2f fill_ms=%.2f per_batch_cpu_ms=%.2f "
               "fill_cpu_ms=%.2f\n",
               NAMES[k], threads, 1e3 * m[k].epoch_s, 1e3 * m[k].fill_s, 1e3 * m[k].epoch_cpu,
               1e3 * m[k].fill_cpu);
    }
    double v[MAX_REPEATS], w[MAX_REPEATS];
    for (int r = 0; r < repeats; r++) {
        v[r] = (s[r][1].fill_s - s[r][2].fill_s) / s[r][1].epoch_s;
        w[r] = s[r][1].fill_s - s[r][2].fill_s;
    }
    printf("STUDYGEN making the augmented set (epoch 1 fill - epoch 2 fill): %.3f s, %.1f%% of the first "
           "epoch, paid once per run\n",
           median(w, repeats), 100 * median(v, repeats));
    printf("SHARE epoch time per batch vs plain (wall): studygen_epoch2 %+.1f%%, keras %+.1f%%, m11aug "
           "%+.1f%%\n",
           100 * (m[2].epoch_s / m[0].epoch_s - 1), 100 * (m[3].epoch_s / m[0].epoch_s - 1),
           100 * (m[4].epoch_s / m[0].epoch_s - 1));
    printf("SHARE epoch CPU per batch vs plain: studygen_epoch2 %+.1f%%, keras %+.1f%%, m11aug %+.1f%%\n",
           100 * (m[2].epoch_cpu / m[0].epoch_cpu - 1), 100 * (m[3].epoch_cpu / m[0].epoch_cpu - 1),
           100 * (m[4].epoch_cpu / m[0].epoch_cpu - 1));
    printf("AUGMENTATION its own cost, (fill - plain fill) / plain batch: keras %.1f%% wall %.1f%% CPU, "
           "m11aug %.1f%% wall %.1f%% CPU\n",
           100 * (m[3].fill_s - m[0].fill_s) / m[0].epoch_s,
           100 * (m[3].fill_cpu - m[0].fill_cpu) / m[0].epoch_cpu,
           100 * (m[4].fill_s - m[0].fill_s) / m[0].epoch_s,
           100 * (m[4].fill_cpu - m[0].fill_cpu) / m[0].epoch_cpu);
}

/* The thread CPU time of the calling thread: a per-sample cost that other processes' load hardly moves. */
static double thread_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Microseconds of one thread's CPU per sample of each transform, over `count` training images in a scattered
 * order (a shuffled epoch reads them so: rarely in cache). */
static void per_sample_costs(const cnn_dataset *train, int count)
{
    static cnn_augment keras, m11;
    keras = keras_style(), m11 = model_11_aug();
    cnn_transform t[2] = {cnn_augment_transform(&keras), cnn_augment_transform(&m11)};
    float out[784], *all = malloc(sizeof(float) * 784 * (size_t)train->n);
    if (!all || cnn_dataset_images(train, 0, train->n, all)) {
        fprintf(stderr, "per_sample_costs: %s\n", all ? cnn_errmsg() : "out of memory");
        free(all);
        return;
    }
    double us[3];
    for (int k = 0; k < 3; k++) {
        double c0 = thread_cpu();
        for (int i = 0; i < count; i++) {
            int idx = (int)((i * 7919L) % train->n);
            const float *x = all + 784 * (size_t)idx;
            double sc;
            int tx, ty, angle;
            if (k < 2) t[k].apply(t[k].ctx, x, 28, 28, 1, out, 1, 0, idx);
            if (k == 2) cnn_augment_study_draw(1, 0, idx, &sc, &tx, &ty, &angle);
            if (k == 2) cnn_augment_study(x, out, 28, 28, sc, tx, ty, angle);
        }
        us[k] = 1e6 * (thread_cpu() - c0) / count;
    }
    printf("SAMPLE one thread's CPU per sample (%d scattered images): keras %.2f us, m11aug %.2f us, study "
           "transform %.2f us; per batch of %d: %.2f, %.2f, %.2f CPU-ms\n",
           count, us[0], us[1], us[2], B, us[0] * B / 1e3, us[1] * B / 1e3, us[2] * B / 1e3);
    fflush(stdout);
    free(all);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2, repeats = argc > 2 ? atoi(argv[2]) : 3;
    int images = argc > 3 ? atoi(argv[3]) : 60000;
    if (threads < 1 || repeats < 0 || repeats > MAX_REPEATS || images < 2 * B)
        return fprintf(stderr, "usage: augment_cost [threads >= 1] [repeats 0..%d] [images >= %d]\n",
                       MAX_REPEATS, 2 * B),
               2;
    cnn_dataset all, train, test;
    cnn_spec *spec = cnn_spec_load("models/seed/Model_2_s2.spec");
    if (!spec || cnn_dataset_load_dir(CNN_FASHION_MNIST_DIR, &all, &test) ||
        cnn_dataset_slice(&all, 0, images < all.n ? images : all.n, &train))
        return fprintf(stderr, "%s\n", cnn_errmsg()), 1;
    cnn_dataset_free(&all);
    cnn_set_threads(threads);
    cnn_model *m = cnn_spec_build_model(spec, 1);
    if (!m) return fprintf(stderr, "%s\n", cnn_errmsg()), 1;
    printf("augment_cost: Model_2_s2, batch %d, %d threads, %d repeats, %d training images, kernels %s\n", B,
           threads, repeats, train.n, cnn_isa_name());
    per_sample_costs(&train, train.n < 20000 ? train.n : 20000);
    sample s[MAX_REPEATS][VARIANTS];
    for (int r = 0; r < repeats; r++) repeat(m, &train, r, s[r]);
    if (repeats) summarise(s, repeats, threads);
    cnn_model_free(m);
    cnn_spec_free(spec);
    cnn_dataset_free(&train);
    cnn_dataset_free(&test);
    return 0;
}
