/* cnnlab eval and cnnlab summary. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char *const EVAL_HELP =
    "usage: cnnlab eval MODEL_FILE [--data DIR] [--batch N] [--threads N] [--precision fp32|bf16]\n"
    "\n"
    "Evaluates a saved model (model.cnn of a run folder) on the test set of DIR\n"
    "(default " CNN_FASHION_MNIST_DIR ") and prints its loss and accuracy; --precision bf16\n"
    "runs the convolutions' and Dense products in BF16 (CPUs with AVX512_BF16).\n";

int cli_eval(int argc, char **argv)
{
    const char *file = NULL, *data = CNN_FASHION_MNIST_DIR, *precision = "fp32";
    long batch = 512, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) return fputs(EVAL_HELP, stdout), EXIT_OK;
        if (!strcmp(o, "--data") && v)
            data = argv[++i];
        else if (!strcmp(o, "--batch")) {
            if (cli_int(o, v, 1, 1 << 20, &batch)) return EXIT_USAGE;
            i++;
        } else if (!strcmp(o, "--threads")) {
            if (cli_int(o, v, 1, 1024, &threads)) return EXIT_USAGE;
            i++;
        } else if (!strcmp(o, "--precision")) {
            if (cli_precision(o, v, &precision)) return EXIT_USAGE;
            i++;
        } else if (o[0] != '-' && !file)
            file = o;
        else
            return cli_error("eval: unexpected argument '%s' (try: cnnlab eval --help)", o), EXIT_USAGE;
    }
    if (!file) return cli_error("eval: which model file? (try: cnnlab eval --help)"), EXIT_USAGE;
    cnn_set_threads((int)threads);
    cnn_model *m = cnn_model_load(file);
    cnn_dataset test = {0};
    double loss, acc;
    int fail = !m || cnn_model_set_precision(m, precision) || cnn_dataset_load_dir(data, NULL, &test);
    if (fail) {
        cli_error("%s", cnn_errmsg());
    } else {
        cli_precision_note(precision);
        /* The library's message names the model, not the files: say which test set did not fit. */
        if ((fail = cnn_model_evaluate(m, &test, (int)batch, &loss, &acc) != 0))
            cli_error("%s (the test set of %s)", cnn_errmsg(), data);
        else
            printf("%s: test loss %.4f, test accuracy %.2f%% (%d images, precision %s)\n", cnn_model_name(m),
                   loss, 100 * acc, test.n, precision);
    }
    cnn_model_free(m);
    cnn_dataset_free(&test);
    return fail ? EXIT_FAILURE_RUN : EXIT_OK;
}

int cli_summary(int argc, char **argv)
{
    const char *name = "Model_1";
    int positional = 0, expand = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            name = argv[++i];
        else if (!strcmp(argv[i], "--expand"))
            expand = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return puts("usage: cnnlab summary [SPEC | --model NAME] [--expand]\n\nPrints the model's layer "
                        "table "
                        "without training. A nested model (a VGG16 base) is one row, as Keras shows it; "
                        "--expand "
                        "lists its layers under it."),
                   EXIT_OK;
        else if (argv[i][0] != '-' && !positional)
            name = argv[i], positional = 1;
        else
            return cli_error("summary: unexpected argument '%s'", argv[i]), EXIT_USAGE;
    }
    int usage;
    cnn_spec *s = cli_spec_resolve(name, &usage);
    if (!s) {
        if (usage) cli_error("summary: unknown model '%s'", name);
        return usage ? EXIT_USAGE : EXIT_FAILURE_RUN;
    }
    /* The table does not depend on the weights: a pretrained base need not be on this machine. */
    cnn_spec_set_pretrained(s, "none");
    cnn_model *m = cnn_spec_build_model(s, 1);
    if (!m)
        cli_error("%s", cnn_errmsg());
    else
        cli_print_summary(s, m, expand, stdout);
    cnn_model_free(m);
    cnn_spec_free(s);
    return m ? EXIT_OK : EXIT_FAILURE_RUN;
}
