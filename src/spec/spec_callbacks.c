/* The callbacks: section of a spec, turned into callback objects in file order by the callback registry. */
#include <stdlib.h>
#include <string.h>

#include "callbacks/callbacks.h"
#include "core/error.h"
#include "spec/spec.h"

static cnn_callback *make_callback(const spec_call *c, const cnn_callback_env *env)
{
    const cnn_callback_kind *kind = cnn_callback_kind_find(c->name);
    if (kind) return cnn_callback_kind_create(kind, c->args, env);
    const char *near = cnn_callback_kind_suggest(c->name);
    if (near)
        cnn_fail(CNN_ERR_FORMAT, "unknown callback '%s' (did you mean '%s'?)", c->name, near);
    else
        cnn_fail(CNN_ERR_FORMAT, "unknown callback '%s' (known: %s)", c->name, cnn_callback_kind_types());
    return NULL;
}

int cnn_spec_callbacks(const cnn_spec *s, const char *out_dir, cnn_callback ***callbacks, int *count)
{
    *callbacks = NULL;
    *count = 0;
    cnn_callback **list = calloc((size_t)s->ncallbacks + 1, sizeof *list);
    if (!list) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    cnn_spec_fit fit;
    cnn_spec_fit_settings(s, &fit);
    const cnn_callback_env env = {.model = s->name, .out_dir = out_dir, .epochs = fit.epochs};
    int n = 0;
    for (int i = 0; i < s->ncallbacks; i++) {
        /* Without a folder there are no files: a checkpoint would only write into the current folder. */
        if (!out_dir && !strcmp(s->callbacks[i].name, "ModelCheckpoint")) continue;
        list[n] = make_callback(&s->callbacks[i], &env);
        if (!list[n]) {
            int rc = cnn_spec_fail_call(s, &s->callbacks[i]);
            for (int j = 0; j < n; j++) cnn_callback_free(list[j]);
            free(list);
            return rc;
        }
        n++;
    }
    *callbacks = list;
    *count = n;
    return CNN_OK;
}
