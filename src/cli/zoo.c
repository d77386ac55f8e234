/* The study's models built into the binary (spec files arrive with `cnnlab study`). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"

static const cli_recipe g_recipes[] = {
    {
        .name = "Model_1",
        .description = "MLP baseline: Flatten -> Dense 256 relu -> Dense 512 relu -> Dense 10 softmax",
        .h = 28, .w = 28, .c = 1,
        .layers = {{"Flatten", "name=INPUT"},
                   {"Dense", "units=256, activation=relu, name=Hidden_Layer_1"},
                   {"Dense", "units=512, activation=relu, name=Hidden_Layer_2"},
                   {"Dense", "units=10, activation=softmax, name=OUTPUT"}},
        .optimizer = CNN_OPT_ADAM, .lr = 0.005, .batch = 512, .epochs = 60,
        .schedule = 1, .thresh = 7, .lr_after = 0.001,
    },
    {
        .name = "Model_2",
        .description = "CNN: C32k3v -> MP2 -> C64k3v -> MP2 -> C64k3v -> F576 -> D128 -> D10 (spec 4.2)",
        .h = 28, .w = 28, .c = 1,
        .layers = {{"Conv2D", "filters=32, kernel_size=3, activation=relu"},
                   {"MaxPooling2D", "pool_size=2"},
                   {"Conv2D", "filters=64, kernel_size=3, activation=relu"},
                   {"MaxPooling2D", "pool_size=2"},
                   {"Conv2D", "filters=64, kernel_size=3, activation=relu"},
                   {"Flatten", ""},
                   {"Dense", "units=128, activation=relu"},
                   {"Dense", "units=10, activation=softmax"}},
        .optimizer = CNN_OPT_ADAM, .lr = 0.005, .batch = 512, .epochs = 60,
        .schedule = 2, .thresh = 2,
    },
    {
        .name = "Model_2_s2",
        .description = "CNN: C32k3 same -> MP2s2 -> C64k3 same -> MP2s2 -> C64k3v -> F1600 -> D128 -> D10 (spec 4.3)",
        .h = 28, .w = 28, .c = 1,
        .layers = {{"Conv2D", "filters=32, kernel_size=3, padding=same, activation=relu"},
                   {"MaxPooling2D", "pool_size=2, strides=2"},
                   {"Conv2D", "filters=64, kernel_size=3, padding=same, activation=relu"},
                   {"MaxPooling2D", "pool_size=2, strides=2"},
                   {"Conv2D", "filters=64, kernel_size=3, activation=relu"},
                   {"Flatten", ""},
                   {"Dense", "units=128, activation=relu"},
                   {"Dense", "units=10, activation=softmax"}},
        .optimizer = CNN_OPT_ADAM, .lr = 0.005, .batch = 512, .epochs = 60,
        .schedule = 1, .thresh = 7, .lr_after = 0.001,
    },
};
enum { N_RECIPES = sizeof g_recipes / sizeof g_recipes[0] };

const cli_recipe *cli_recipe_find(const char *name)
{
    for (int i = 0; i < N_RECIPES; i++)
        if (!strcasecmp(g_recipes[i].name, name)) return &g_recipes[i];
    return NULL;
}

void cli_recipe_list(FILE *out)
{
    for (int i = 0; i < N_RECIPES; i++) fprintf(out, "  %-12s %s\n", g_recipes[i].name, g_recipes[i].description);
}

cnn_model *cli_recipe_build(const cli_recipe *r, uint64_t seed)
{
    cnn_model *m = cnn_model_create(r->name, r->h, r->w, r->c);
    if (!m) return NULL;
    for (int i = 0; r->layers[i][0]; i++)
        if (cnn_model_add(m, r->layers[i][0], r->layers[i][1])) goto fail;
    if (cnn_model_build(m, seed)) goto fail;
    return m;
fail:
    cnn_model_free(m);
    return NULL;
}
