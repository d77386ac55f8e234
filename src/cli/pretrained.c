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
