/* --vgg-weights: which weights a spec's VGG16 base starts from, checked before any data is loaded. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cli_apply_pretrained(cnn_spec *s, const cli_run_options *o)
{
    char what[256];
    if (o->vgg_weights && cnn_spec_set_pretrained(s, o->vgg_weights))
        return cli_error("%s", cnn_errmsg()), -1;
    if (!cnn_spec_pretrained(s, what, sizeof what)) return 0;
    if (cnn_spec_check_pretrained(s)) return cli_error("%s", cnn_errmsg()), -1;
    /* Never let a random base pass for an ImageNet one. */
    if (!strcmp(what, "none"))
        printf("%s: the VGG16 base starts from Keras's random initialisation, NOT from ImageNet weights\n",
               cnn_spec_name(s));
    else
        printf("%s: the VGG16 base starts from the weights %s\n", cnn_spec_name(s), what);
    return 0;
}

void cli_label_pretrained(const cnn_spec *s, cnn_run *run)
{
    char what[256];
    if (!cnn_spec_pretrained(s, what, sizeof what)) return;
    /* A weights file's path is cut to what the record holds; its name is what matters there. */
    const char *base =
        strcmp(what, "none") ? (strrchr(what, '/') ? strrchr(what, '/') + 1 : what) : CNN_RUN_RANDOM_BASE;
    int n =
        snprintf(run->weights, sizeof run->weights, "seed %llu, VGG16 base ", (unsigned long long)run->seed);
    if (n > 0 && (size_t)n < sizeof run->weights)
        snprintf(run->weights + n, sizeof run->weights - (size_t)n, "%.*s",
                 (int)(sizeof run->weights - (size_t)n - 1), base);
}

void cli_print_summary(const cnn_spec *s, const cnn_model *m, int expand, FILE *out)
{
    cnn_layer_group groups[8];
    int n = cnn_spec_layer_groups(s, groups, 8);
    cnn_model_summary_grouped(m, groups, n < 8 ? n : 8, expand, out);
}
