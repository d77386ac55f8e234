/* cnnlab export-weights: a saved model's weights as a Keras HDF5 weights file, in the layout of Keras's
 * save_weights("x.h5"), so that Keras's load_weights reads them into the same architecture. A VGG16 base of
 * the model's spec is written as one nested layer, as Keras holds it. */
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

static const char *const HELP =
    "usage: cnnlab export-weights MODEL.cnn OUT.h5\n"
    "\n"
    "Writes the weights of a model saved by cnnlab as a Keras HDF5 weights file (Keras 2's save_weights\n"
    "layout: a group per layer, datasets \"<layer>/kernel:0\"). Keras's model.load_weights(OUT.h5) reads it\n"
    "into the same architecture; a VGG16 base is one layer \"vgg16\", as in Keras.\n";

static int same_file(const char *a, const char *b)
{
    struct stat x, y;
    return !stat(a, &x) && !stat(b, &y) && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* The groups of the spec the model was built from (none when it has no spec). */
static int model_groups(const cnn_model *m, const char *origin, cnn_layer_group *g, int cap)
{
    const char *text = cnn_model_spec_text(m);
    if (!text) return 0;
    cnn_spec *s = cnn_spec_parse(text, origin);
    if (!s) return cli_error("%s", cnn_errmsg()), -1;
    int n = cnn_spec_layer_groups(s, g, cap);
    cnn_spec_free(s);
    return n < cap ? n : cap;
}

int cli_export_weights(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
        return fputs(HELP, stdout), EXIT_OK;
    if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-')
        return cli_error("export-weights: expected MODEL.cnn OUT.h5 (try: cnnlab export-weights --help)"),
               EXIT_USAGE;
    if (same_file(argv[1], argv[2]))
        return cli_error("export-weights: %s is the model itself; choose another output", argv[2]),
               EXIT_USAGE;
    cnn_model *m = cnn_model_load(argv[1]);
    if (!m) return cli_error("%s", cnn_errmsg()), EXIT_FAILURE_RUN;
    cnn_layer_group groups[8];
    int n = model_groups(m, argv[1], groups, 8);
    int rc = n < 0 || cnn_model_save_keras_weights(m, groups, n, argv[2]);
    if (n >= 0 && rc) cli_error("%s", cnn_errmsg());
    if (!rc)
        printf("%s: %d tensors of %s written in Keras's HDF5 layout\n", argv[2], cnn_model_num_tensors(m),
               cnn_model_name(m));
    cnn_model_free(m);
    return rc ? EXIT_FAILURE_RUN : EXIT_OK;
}
