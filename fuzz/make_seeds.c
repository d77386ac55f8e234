/* Writes the model-file seeds of fuzz/corpus/fuzz_model_file/ (run from the repository root after `make`):
 *   cc -Iinclude fuzz/make_seeds.c build/libcnnlab.a $(the Makefile's LDLIBS) -o /tmp/s && /tmp/s
 * Small models, so that the fuzzer's runs stay fast: a dense net with an optimizer's state (every section
 * of the format) and a convolutional one. */
#include <stdio.h>
#include <stdlib.h>

#include "cnnlab.h"

static void check(int rc)
{
    if (rc) {
        fprintf(stderr, "make_seeds: %s\n", cnn_errmsg());
        exit(1);
    }
}

static void dense_seed(void)
{
    cnn_model *m = cnn_model_create("dense", 2, 2, 1);
    check(!m);
    check(cnn_model_add(m, "Flatten", "name=flat"));
    check(cnn_model_add(m, "Dense", "units=3, activation=relu, kernel_regularizer=l2(0.01), name=hidden"));
    check(cnn_model_add(m, "Dense", "units=2, activation=softmax, name=out"));
    check(cnn_model_build(m, 1));
    cnn_optimizer_config opt = cnn_optimizer_default(CNN_OPT_ADAM, 0.01);
    check(cnn_model_compile(m, &opt));
    float x[2 * 4] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    int32_t y[2] = {0, 1};
    double loss;
    int correct;
    check(cnn_model_train_step(m, x, y, 2, &loss, &correct));
    check(cnn_model_save(m, "fuzz/corpus/fuzz_model_file/dense.cnn"));
    cnn_model_free(m);
}

static void conv_seed(void)
{
    cnn_model *m = cnn_model_create("conv", 6, 6, 1);
    check(!m);
    check(cnn_model_add(m, "Conv2D", "filters=2, kernel_size=3, padding=same, activation=relu"));
    check(cnn_model_add(m, "BatchNormalization", NULL));
    check(cnn_model_add(m, "MaxPooling2D", "pool_size=2"));
    check(cnn_model_add(m, "Dropout", "rate=0.25"));
    check(cnn_model_add(m, "Flatten", NULL));
    check(cnn_model_add(m, "Dense", "units=3, activation=softmax"));
    check(cnn_model_build(m, 2));
    check(cnn_model_save(m, "fuzz/corpus/fuzz_model_file/conv.cnn"));
    cnn_model_free(m);
}

int main(void)
{
    dense_seed();
    conv_seed();
    return 0;
}
