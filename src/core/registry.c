#include "core/registry.h"

#include <stdio.h>
#include <string.h>

#include "core/opts.h"

int cnn_registry_index(cnn_name_at_fn name_at, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(name_at(i), name)) return i;
    return -1;
}

const char *cnn_registry_suggest(cnn_name_at_fn name_at, int n, const char *name, int max_edits)
{
    const char *best = NULL;
    int bd = max_edits + 1;
    for (int i = 0; i < n; i++) {
        int d = cnn_edit_distance(name, name_at(i));
        if (d < bd) bd = d, best = name_at(i);
    }
    return best;
}

const char *cnn_registry_list(cnn_name_at_fn name_at, int n, const char *last_sep, char *buf, size_t cap)
{
    if (buf[0]) return buf;
    size_t len = 0;
    for (int i = 0; i < n && len < cap; i++) {
        const char *sep = i == 0 ? "" : i == n - 1 ? last_sep : ", ";
        int k = snprintf(buf + len, cap - len, "%s%s", sep, name_at(i));
        len += k > 0 ? (size_t)k : 0;
    }
    return buf;
}
