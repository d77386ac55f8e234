/* Keras-style model.summary() table. */
#include <string.h>

#include "model/model.h"

enum { COL_NAME = 29, COL_SHAPE = 26, LINE = 65 };

static void rule(FILE *out, char c)
{
    for (int i = 0; i < LINE; i++) fputc(c, out);
    fputc('\n', out);
}

static void shape_text(cnn_shape s, char *buf, size_t cap)
{
    if (s.rank == 1)
        snprintf(buf, cap, "(None, %d)", s.c);
    else
        snprintf(buf, cap, "(None, %d, %d, %d)", s.h, s.w, s.c);
}

/* 1234567 -> "1,234,567" */
static void group_digits(size_t v, char *buf, size_t cap)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%zu", v), k = 0;
    for (int i = 0; i < n && (size_t)k + 2 < cap; i++) {
        if (i && (n - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
}

/* Keras's readable_memory_size: 1024-based units with two decimals. */
static void memory_text(size_t bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"Byte", "KB", "MB", "GB", "TB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) v /= 1024.0, u++;
    snprintf(buf, cap, "%.2f %s", v, units[u]);
}

static void total_line(FILE *out, const char *what, size_t count)
{
    char num[32], mem[32];
    group_digits(count, num, sizeof num);
    memory_text(count * sizeof(float), mem, sizeof mem);
    fprintf(out, "%s: %s (%s)\n", what, num, mem);
}

static size_t layer_params(const cnn_layer *l)
{
    size_t n = 0;
    for (int j = 0; j < l->nparams; j++) n += l->params[j].size;
    return n;
}

void cnn_model_summary(const cnn_model *m, FILE *out)
{
    fprintf(out, "Model: \"%s\"\n", m->name);
    rule(out, '_');
    fprintf(out, " %-*s%-*s%s\n", COL_NAME - 1, "Layer (type)", COL_SHAPE, "Output Shape", "Param #");
    rule(out, '=');
    for (int i = 0; i < m->nlayers; i++) {
        const cnn_layer *l = &m->layers[i];
        char name[160], shape[64], num[32];
        snprintf(name, sizeof name, "%s (%s)", l->name, l->ops->type);
        if (m->built)
            shape_text(l->out, shape, sizeof shape);
        else
            snprintf(shape, sizeof shape, "(unbuilt)");
        group_digits(layer_params(l), num, sizeof num);
        int pad = (int)strlen(name) < COL_NAME - 2 ? COL_NAME - 1 : (int)strlen(name) + 1;
        fprintf(out, " %-*s%-*s%s\n", pad, name, COL_SHAPE, shape, num);
        if (i + 1 < m->nlayers) fputc('\n', out);
    }
    rule(out, '=');
    size_t total = cnn_model_num_params(m, 0), trainable = cnn_model_num_params(m, 1);
    total_line(out, "Total params", total);
    total_line(out, "Trainable params", trainable);
    total_line(out, "Non-trainable params", total - trainable);
    rule(out, '_');
}
