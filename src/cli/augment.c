/* cnnlab augment: the augmentation sample picture (the study's image_genarator.png, spec §5): the first
 * training images above their augmented versions, as a spec's augment: section makes them for training. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"

/* The study's generator is the augment: section of this built-in model (spec §4.19). */
#define STUDY_GENERATOR_SPEC "Model_2_s2_igen"

static const char *const HELP =
    "usage: cnnlab augment [SPEC] [--seed N] [--first I] [--count N] [--out FILE.png] [--data DIR]\n"
    "\n"
    "Draws the augmentation sample (the study's image_genarator.png): COUNT training images from image I in\n"
    "a row, above the same images as the augmentation makes them for training, gray_r.\n"
    "\n"
    "Without SPEC: the study's generator (spec 5: scale about the top-left corner, shift, rotation; the\n"
    "augment: section of " STUDY_GENERATOR_SPEC ", batch 512) -- its first augmented batch, made from the\n"
    "first original batch. With SPEC (a spec file or a built-in model name): that spec's augment: section\n"
    "with its fit settings; random augmentation shows the draws of the first epoch.\n"
    "\n"
    "options:\n"
    "  --seed N      the augmentation's seed (default: the spec's fit seed)\n"
    "  --first I     the first image shown (default 1: images 1..10, those of the study's picture)\n"
    "  --count N     images per row, 1..32 (default 10); I + N must not pass the spec's batch size\n"
    "  --out FILE    the picture, .png or .svg (default image_genarator.png, the study's file name)\n"
    "  --data DIR    the IDX dataset (default " CNN_FASHION_MNIST_DIR ")\n"
    "\n"
    "The same seed gives the same picture, byte for byte, on any thread count.\n";

typedef struct augment_args {
    const char *spec, *out, *data;
    long seed, first, count; /* seed -1: the spec's */
} augment_args;

/* An output that ends in .png or .svg cannot be the spec or an IDX file this command reads. */
static int picture_name(const char *path)
{
    size_t n = strlen(path);
    return n > 4 && (!strcasecmp(path + n - 4, ".png") || !strcasecmp(path + n - 4, ".svg"));
}

/* The options into a; a usage error is printed and returns EXIT_USAGE, --help returns -1. */
static int parse(int argc, char **argv, augment_args *a)
{
    *a = (augment_args){NULL, "image_genarator.png", CNN_FASHION_MNIST_DIR, -1, 1, 10};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) return fputs(HELP, stdout), -1;
        int rc = 0;
        if (!strcmp(o, "--seed"))
            rc = cli_int(o, v, 0, (1L << 53), &a->seed);
        else if (!strcmp(o, "--first"))
            rc = cli_int(o, v, 0, 1L << 30, &a->first);
        else if (!strcmp(o, "--count"))
            rc = cli_int(o, v, 1, 32, &a->count);
        else if (!strcmp(o, "--out") || !strcmp(o, "--data")) {
            if (!v) return cli_error("augment: %s needs a value", o), EXIT_USAGE;
            *(!strcmp(o, "--out") ? &a->out : &a->data) = v;
        } else if (o[0] != '-' && !a->spec) {
            a->spec = o;
            continue;
        } else
            return cli_error("augment: unexpected argument '%s' (try: cnnlab augment --help)", o), EXIT_USAGE;
        if (rc) return EXIT_USAGE;
        i++;
    }
    if (!picture_name(a->out))
        return cli_error("augment: --out %s: expected a .png or .svg file name", a->out), EXIT_USAGE;
    return 0;
}

/* Both rows and the picture; 0 or -1 with the error printed. */
static int draw(const cnn_spec *s, const cnn_spec_fit *f, const cnn_dataset *train, const augment_args *a)
{
    int n = (int)a->count, study = 0;
    size_t sample = (size_t)train->h * (size_t)train->w * (size_t)train->c;
    float *augmented = malloc(sizeof *augmented * sample * (size_t)n);
    float *originals = malloc(sizeof *originals * sample * (size_t)n);
    if (!augmented || !originals)
        return free(augmented), free(originals), cli_error("augment: out of memory"), -1;
    int rc = cnn_spec_augment_sample(s, train, f, (int)a->first, n, augmented, &study);
    if (!rc) rc = cnn_dataset_images(train, (int)a->first, n, originals);
    char title[2][160];
    snprintf(title[0], sizeof title[0], "%s", study ? "Original images of 1/2 dataset" : "Original images");
    snprintf(title[1], sizeof title[1],
             study ? "Transformed images of 2/2 dataset" : "Augmented images, epoch 1");
    const float *rows[2] = {originals, augmented};
    const char *titles[2] = {title[0], title[1]};
    if (!rc) rc = cnn_plot_image_rows(rows, 2, n, train->h, train->w, train->c, titles, a->out);
    if (rc) cli_error("augment: %s", cnn_errmsg());
    free(augmented);
    free(originals);
    return rc ? -1 : 0;
}

int cli_augment(int argc, char **argv)
{
    augment_args a;
    int rc = parse(argc, argv, &a), usage = 0;
    if (rc) return rc < 0 ? EXIT_OK : rc;
    cnn_spec *s = cli_spec_resolve(a.spec ? a.spec : STUDY_GENERATOR_SPEC, &usage);
    if (!s) {
        if (usage)
            cli_error("augment: '%s' is neither a spec file nor a built-in model (cnnlab models)", a.spec);
        return usage ? EXIT_USAGE : EXIT_FAILURE_RUN;
    }
    cnn_spec_fit f;
    cnn_spec_fit_settings(s, &f);
    if (a.seed >= 0) f.seed = (uint64_t)a.seed;
    cnn_dataset train = {0}, test = {0};
    if (cnn_dataset_load_dir(a.data, &train, &test))
        rc = (cli_error("augment: %s (--data DIR)", cnn_errmsg()), -1);
    if (!rc) rc = draw(s, &f, &train, &a);
    if (!rc)
        printf("%s: training images %ld..%ld of %s and their augmented versions (%s, seed %llu)\n", a.out,
               a.first, a.first + a.count - 1, a.data, cnn_spec_name(s), (unsigned long long)f.seed);
    cnn_dataset_free(&train);
    cnn_dataset_free(&test);
    cnn_spec_free(s);
    return rc ? EXIT_FAILURE_RUN : EXIT_OK;
}
