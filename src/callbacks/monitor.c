/* What the monitoring callbacks share: construction from an options text, the type check of get_info and
 * the layout of their resumable state. */
#include "callbacks/monitor.h"

#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
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

size_t cnn_state_block_size(const cnn_state_fields *f)
{
    return 8 * (size_t)f->nd + 4 * (size_t)f->ni;
}

static uint8_t *store_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int k = 0; k < bytes; k++) p[k] = (uint8_t)(v >> (8 * k));
    return p + bytes;
}

void cnn_state_block_save(const cnn_state_fields *f, void *buf)
{
    uint8_t *p = buf;
    for (int k = 0; k < f->nd; k++) {
        uint64_t bits;
        memcpy(&bits, f->d[k], 8);
        p = store_le(p, bits, 8);
    }
    for (int k = 0; k < f->ni; k++) p = store_le(p, (uint32_t)*f->i[k], 4);
}

int cnn_state_block_load(const cnn_state_fields *f, const void *buf, size_t len, const char *type)
{
    size_t need = cnn_state_block_size(f);
    if (len < need)
        return cnn_fail(CNN_ERR_FORMAT, "%s: saved state of %zu bytes; expected %zu", type, len, need);
    /* The length is checked: the reads below cannot fail. */
    cnn_bytes_reader r = {buf, need, 0, type};
    for (int k = 0; k < f->nd; k++) cnn_take_f64(&r, f->d[k], "state", "a value");
    for (int k = 0; k < f->ni; k++) {
        int32_t v = 0;
        cnn_take_i32(&r, &v, "state", "a value");
        *f->i[k] = v;
    }
    return CNN_OK;
}
