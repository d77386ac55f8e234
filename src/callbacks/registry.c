/* The registry: Keras callback class name -> constructor, one line per callback file. */
#include <string.h>

#include "callbacks/callbacks.h"
#include "core/opts.h"

extern const cnn_callback_kind cnn_early_stopping_kind;
extern const cnn_callback_kind cnn_reduce_lr_kind;
extern const cnn_callback_kind cnn_checkpoint_kind;
extern const cnn_callback_kind cnn_lr_scheduler_kind;

static const cnn_callback_kind *const g_kinds[] = {
    &cnn_early_stopping_kind,
    &cnn_reduce_lr_kind,
    &cnn_checkpoint_kind,
    &cnn_lr_scheduler_kind,
};
enum { N_KINDS = sizeof g_kinds / sizeof g_kinds[0] };

const cnn_callback_kind *cnn_callback_kind_find(const char *type)
{
    for (int i = 0; i < N_KINDS; i++)
        if (!strcmp(g_kinds[i]->type, type)) return g_kinds[i];
    return NULL;
}

const char *cnn_callback_kind_suggest(const char *type)
{
    for (int i = 0; i < N_KINDS; i++)
        if (cnn_edit_distance(type, g_kinds[i]->type) <= 3) return g_kinds[i]->type;
    return NULL;
}

const char *cnn_callback_kind_types(void)
{
    static char list[256];
    if (!list[0])
        for (int i = 0; i < N_KINDS; i++) {
            strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
            strncat(list, g_kinds[i]->type, sizeof list - strlen(list) - 1);
        }
    return list;
}
