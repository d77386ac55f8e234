/* What the monitoring callbacks share: construction from an options text and the type check of get_info. */
#include "callbacks/monitor.h"

#include <stdlib.h>

#include "core/error.h"

void *cnn_monitor_create(const char *type, size_t size, const cnn_callback *hooks, const char *options,
                         int (*read)(void *state, cnn_opts *o))
{
    void *state = calloc(1, size);
    if (!state) {
        cnn_fail(CNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    cnn_opts o;
    int rc = cnn_opts_parse(&o, options, type);
    if (!rc) rc = read(state, &o);
    if (!rc) rc = cnn_opts_finish(&o);
    if (rc) {
        free(state);
        return NULL;
    }
    *(cnn_callback *)state = *hooks;
    return state;
}

const void *cnn_monitor_state(const cnn_callback *cb, cnn_epoch_end_fn epoch_end, const char *what)
{
    if (cb && cb->on_epoch_end == epoch_end) return cb;
    cnn_fail(CNN_ERR_INVALID, "callback '%s' is not %s", cb && cb->name ? cb->name : "(null)", what);
    return NULL;
}
