#include "optim/optimizer.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/registry.h"

cnn_optimizer_config cnn_optimizer_default(cnn_optimizer_kind kind, double learning_rate)
{
    cnn_optimizer_config c = {.kind = kind, .learning_rate = learning_rate};
    c.beta_1 = 0.9;
    c.beta_2 = 0.999;
    c.epsilon = 1e-7;
    c.rho = 0.9;
    return c;
}

/* The registry: Keras class name -> ops, one line per update-rule file. */
extern const cnn_optimizer_ops cnn_adam_ops;
extern const cnn_optimizer_ops cnn_sgd_ops;
extern const cnn_optimizer_ops cnn_rmsprop_ops;

/* Pointers to entries, as core/registry.h reads them. */
static const void *const g_optimizers[] = {&cnn_adam_ops, &cnn_sgd_ops, &cnn_rmsprop_ops};
enum { N_OPTIMIZERS = sizeof g_optimizers / sizeof g_optimizers[0] };

const cnn_optimizer_ops *cnn_optimizer_find(const char *type)
{
    return cnn_registry_find(g_optimizers, N_OPTIMIZERS, type);
}

const char *cnn_optimizer_types(void)
{
    static char list[128];
    return cnn_registry_list(g_optimizers, N_OPTIMIZERS, " or ", list, sizeof list);
}

int cnn_optimizer_read_lr(cnn_opts *o, double def, cnn_optimizer_config *cfg)
{
    return cnn_opts_double(o, "learning_rate", def, 1e-12, 1e3, &cfg->learning_rate);
}

static int needs_m(const cnn_optimizer_config *c)
{
    return c->kind == CNN_OPT_ADAM || (c->kind == CNN_OPT_SGD && c->momentum != 0.0);
}

int cnn_optimizer_check(const cnn_optimizer_config *cfg)
{
    if (!(cfg->learning_rate > 0) || cfg->momentum < 0 || cfg->momentum >= 1 || cfg->beta_1 < 0 ||
        cfg->beta_1 >= 1 || cfg->beta_2 < 0 || cfg->beta_2 >= 1 || cfg->rho < 0 || cfg->rho >= 1 ||
        !(cfg->epsilon >= 0))
        return cnn_fail(CNN_ERR_INVALID, "optimizer: learning_rate must be > 0 and momentum, beta_1, beta_2, "
                                         "rho in [0, 1)");
    return CNN_OK;
}

int cnn_optimizer_init(cnn_optimizer *o, const cnn_optimizer_config *cfg, size_t nparams)
{
    cnn_optimizer_free(o);
    if (cnn_optimizer_check(cfg)) return cnn_errcode();
    o->cfg = *cfg;
    o->lr = cfg->learning_rate;
    size_t bytes = sizeof(float) * (nparams ? nparams : 1);
    if (needs_m(cfg) && !(o->m = calloc(1, bytes)))
        return cnn_fail(CNN_ERR_NOMEM, "optimizer: out of memory");
    if ((cfg->kind == CNN_OPT_ADAM || cfg->kind == CNN_OPT_RMSPROP) && !(o->v = calloc(1, bytes))) {
        cnn_optimizer_free(o);
        return cnn_fail(CNN_ERR_NOMEM, "optimizer: out of memory");
    }
    return CNN_OK;
}

void cnn_optimizer_free(cnn_optimizer *o)
{
    free(o->m);
    free(o->v);
    free(o->ranges);
    memset(o, 0, sizeof *o);
}

int cnn_optimizer_set_ranges(cnn_optimizer *o, const cnn_range *r, int n)
{
    cnn_range *copy = malloc(sizeof *copy * (size_t)(n ? n : 1));
    if (!copy) return cnn_fail(CNN_ERR_NOMEM, "optimizer: out of memory");
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (k && copy[k - 1].offset + copy[k - 1].size == r[i].offset)
            copy[k - 1].size += r[i].size;
        else
            copy[k++] = r[i];
    }
    free(o->ranges);
    o->ranges = copy;
    o->nranges = k;
    return CNN_OK;
}

void cnn_optimizer_step(cnn_optimizer *o, float *w, const float *g)
{
    o->t++;
    for (int i = 0; i < o->nranges; i++) {
        size_t off = o->ranges[i].offset, n = o->ranges[i].size;
        switch (o->cfg.kind) {
        case CNN_OPT_ADAM:
            cnn_adam_update(&o->cfg, o->lr, o->t, w + off, g + off, o->m + off, o->v + off, n);
            break;
        case CNN_OPT_SGD:
            cnn_sgd_update(&o->cfg, o->lr, w + off, g + off, o->m ? o->m + off : NULL, n);
            break;
        case CNN_OPT_RMSPROP:
            cnn_rmsprop_update(&o->cfg, o->lr, w + off, g + off, o->v + off, n);
            break;
        }
    }
}
