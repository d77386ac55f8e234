/* cnnlab profile: per-layer forward and backward times of a model's training step, each GEMM layer's
 * FLOP rate, its share of a bare sgemm of the same shape and of the multiply-add peak, both measured in the
 * same run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char *const HELP =
    "usage: cnnlab profile [SPEC | --model NAME] [--batch N] [--steps N] [--threads N]\n"
    "                      [--precision fp32|bf16]\n"
    "\n"
    "Times SPEC's training step per layer on random inputs (default: the spec's batch,\n"
    "10 timed steps after 2 warm-up steps), in FP32 or with the convolutions' and Dense\n"
    "products in BF16 (--precision bf16, CPUs with AVX512_BF16).\n";

static int parse(int argc, char **argv, const char **name, long *batch, long *steps, long *threads,
                 const char **precision)
{
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) return fputs(HELP, stdout), -1;
        if (!strcmp(o, "--model") && v)
            *name = argv[++i];
        else if (!strcmp(o, "--batch")) {
            if (cli_int(o, v, 1, 1 << 16, batch)) return EXIT_USAGE;
            i++;
        } else if (!strcmp(o, "--steps")) {
            if (cli_int(o, v, 1, 100000, steps)) return EXIT_USAGE;
            i++;
        } else if (!strcmp(o, "--threads")) {
            if (cli_int(o, v, 1, 1024, threads)) return EXIT_USAGE;
            i++;
        } else if (!strcmp(o, "--precision")) {
            if (cli_precision(o, v, precision)) return EXIT_USAGE;
            i++;
        } else if (o[0] != '-' && !positional)
            *name = o, positional = 1;
        else
            return cli_error("profile: unexpected argument '%s' (try: cnnlab profile --help)", o), EXIT_USAGE;
    }
    return 0;
}

static int run_steps(cnn_model *m, const float *x, const int32_t *y, int n, int steps)
{
    for (int s = 0; s < steps; s++) {
        double loss;
        int correct;
        if (cnn_model_train_step(m, x, y, n, &loss, &correct)) return cli_error("%s", cnn_errmsg()), -1;
    }
    return 0;
}

/* The header names what every share is taken of: the multiply-add peak of the kernels in use on this run's
 * threads (measured here, after the timed steps, so that it runs on the same warm threads), the CPU and
 * the instruction-set path. */
static void print_profile(const cnn_model *m, int n, const double *gemm)
{
    char cpu[128];
    cli_cpu_name(cpu, sizeof cpu);
    /* In bf16 the products run on vdpbf16ps, whose peak is the FP32 one's only on some CPUs. */
    const int bf16 = !strcmp(cnn_model_precision(m), "bf16");
    const double peak = bf16 ? cnn_bf16_peak_gflops() : cnn_fma_peak_gflops();
    printf("%s: batch %d, %d threads, kernels %s, precision %s, CPU %s\n", cnn_model_name(m), n,
           cnn_get_threads(), cnn_isa_name(), cnn_model_precision(m), cpu);
    printf("%smultiply-add peak (%s, %d threads): %.1f GFLOP/s; bare sgemm 2048x2048x2048: %.1f GFLOP/s\n",
           bf16 ? "BF16 " : "", cnn_isa_name(), cnn_get_threads(), peak,
           cnn_sgemm_gflops(2048, 2048, 2048, 3));
    cnn_model_profile_print(m, gemm, peak, stdout);
}

static int profile(cnn_model *m, int n, int steps, const int in_size)
{
    float *x = malloc(sizeof(float) * (size_t)n * in_size);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    double *gemm = calloc((size_t)cnn_model_num_layers(m), sizeof(double));
    int rc = !x || !y || !gemm ? (cli_error("out of memory"), -1) : 0;
    for (size_t i = 0; !rc && i < (size_t)n * in_size; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
    for (int i = 0; !rc && i < n; i++) y[i] = i % cnn_model_num_outputs(m);
    if (!rc) rc = run_steps(m, x, y, n, 2);
    if (!rc && cnn_model_profile(m, 1)) rc = (cli_error("%s", cnn_errmsg()), -1);
    if (!rc) rc = run_steps(m, x, y, n, steps);
    for (int i = 0; !rc && i < cnn_model_num_layers(m); i++) {
        int mnk[3];
        if (cnn_model_layer_gemm(m, i, n, mnk)) gemm[i] = cnn_sgemm_gflops(mnk[0], mnk[1], mnk[2], 5);
    }
    if (!rc) print_profile(m, n, gemm);
    free(x), free(y), free(gemm);
    return rc;
}

int cli_profile(int argc, char **argv)
{
    const char *name = "Model_2_s2";
    const char *precision = "fp32";
    long batch = 0, steps = 10, threads = 0;
    int rc = parse(argc, argv, &name, &batch, &steps, &threads, &precision), usage;
    if (rc) return rc < 0 ? EXIT_OK : rc;
    cnn_spec *s = cli_spec_resolve(name, &usage);
    if (!s) return usage ? (cli_error("profile: unknown model '%s'", name), EXIT_USAGE) : EXIT_FAILURE_RUN;
    cnn_set_threads((int)threads);
    cnn_spec_fit f;
    cnn_spec_fit_settings(s, &f);
    cnn_model *m = cnn_spec_build_model(s, 1);
    if (m && cnn_model_set_precision(m, precision)) cnn_model_free(m), m = NULL;
    if (!m)
        cli_error("%s", cnn_errmsg());
    else
        cli_precision_note(precision);
    int h = 0, w = 0, c = 0;
    if (m) cnn_spec_input_shape(s, &h, &w, &c);
    rc = m ? profile(m, batch ? (int)batch : f.batch_size, (int)steps, h * w * c) : -1;
    cnn_model_free(m);
    cnn_spec_free(s);
    return rc ? EXIT_FAILURE_RUN : EXIT_OK;
}
