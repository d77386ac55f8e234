/* The registry: Keras callback class name -> constructor, one line per callback file. */
#include "callbacks/callbacks.h"

#include "core/registry.h"

extern const cnn_callback_kind cnn_early_stopping_kind;
extern const cnn_callback_kind cnn_reduce_lr_kind;
extern const cnn_callback_kind cnn_checkpoint_kind;
extern const cnn_callback_kind cnn_lr_scheduler_kind;

/* Pointers to entries, as core/registry.h reads them. */
static const void *const g_kinds[] = {
    &cnn_early_stopping_kind,
    &cnn_reduce_lr_kind,
    &cnn_checkpoint_kind,
    &cnn_lr_scheduler_kind,
};
enum { N_KINDS = sizeof g_kinds / sizeof g_kinds[0] };

const cnn_callback_kind *cnn_callback_kind_find(const char *type)
{
    return cnn_registry_find(g_kinds, N_KINDS, type);
}

const char *cnn_callback_kind_suggest(const char *type)
{
    return cnn_registry_suggest(g_kinds, N_KINDS, type, 3);
}

const char *cnn_callback_kind_types(void)
{
    static char list[256];
    return cnn_registry_list(g_kinds, N_KINDS, ", ", list, sizeof list);
}

cnn_callback *cnn_callback_kind_create(const cnn_callback_kind *k, const char *options,
                                       const cnn_callback_env *env)
{
    return k->create ? k->create(options) : k->create_in(options, env);
}
