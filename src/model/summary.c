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

static void row(FILE *out, const char *name, const char *shape, size_t params)
{
    char num[32];
    group_digits(params, num, sizeof num);
    int pad = (int)strlen(name) < COL_NAME - 2 ? COL_NAME - 1 : (int)strlen(name) + 1;
    fprintf(out, " %-*s%-*s%s\n", pad, name, COL_SHAPE, shape, num);
}

static void layer_row(FILE *out, const cnn_model *m, int i, const char *indent)
{
    const cnn_layer *l = &m->layers[i];
    char name[192], shape[64];
    snprintf(name, sizeof name, "%s%s (%s)", indent, l->name, l->ops->type);
    if (m->built)
        shape_text(l->out, shape, sizeof shape);
    else
        snprintf(shape, sizeof shape, "(unbuilt)");
    row(out, name, shape, layer_params(l));
}

/* A nested model's row: its last layer's output and all its layers' parameters, as Keras shows it. */
static void group_row(FILE *out, const cnn_model *m, const cnn_layer_group *g)
{
    char name[128], shape[64] = "(unbuilt)";
    size_t params = 0;
    for (int i = g->first; i < g->first + g->count; i++) params += layer_params(&m->layers[i]);
    snprintf(name, sizeof name, "%s (%s)", g->name, g->type);
    if (m->built) shape_text(m->layers[g->first + g->count - 1].out, shape, sizeof shape);
    row(out, name, shape, params);
}

static const cnn_layer_group *group_at(const cnn_model *m, const cnn_layer_group *groups, int ngroups, int i)
{
    for (int k = 0; k < ngroups; k++)
        if (groups[k].first == i && groups[k].count > 0 && groups[k].first + groups[k].count <= m->nlayers)
            return &groups[k];
    return NULL;
}

void cnn_model_summary_grouped(const cnn_model *m, const cnn_layer_group *groups, int ngroups, int expand,
                               FILE *out)
{
    fprintf(out, "Model: \"%s\"\n", m->name);
    rule(out, '_');
    fprintf(out, " %-*s%-*s%s\n", COL_NAME - 1, "Layer (type)", COL_SHAPE, "Output Shape", "Param #");
    rule(out, '=');
    for (int i = 0; i < m->nlayers;) {
        const cnn_layer_group *g = group_at(m, groups, ngroups, i);
        if (g) group_row(out, m, g);
        for (int k = 0; g && expand && k < g->count; k++) layer_row(out, m, i + k, "| ");
        if (!g) layer_row(out, m, i, "");
        i += g ? g->count : 1;
        if (i < m->nlayers) fputc('\n', out);
    }
    rule(out, '=');
    size_t total = cnn_model_num_params(m, 0), trainable = cnn_model_num_params(m, 1);
    total_line(out, "Total params", total);
    total_line(out, "Trainable params", trainable);
    total_line(out, "Non-trainable params", total - trainable);
    rule(out, '_');
}

void cnn_model_summary(const cnn_model *m, FILE *out)
{
    cnn_model_summary_grouped(m, NULL, 0, 0, out);
}
