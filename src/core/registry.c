#include "core/registry.h"

#include <stdio.h>
#include <string.h>

#include "core/opts.h"

/* An entry's first member is its name, and a pointer to a struct, converted, points to its first member. */
static const char *name_of(const void *entry)
{
    return *(const char *const *)entry;
}

const void *cnn_registry_find(const void *const *table, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(name_of(table[i]), name)) return table[i];
    return NULL;
}

const char *cnn_registry_suggest(const void *const *table, int n, const char *name, int max_edits)
{
    const char *best = NULL;
    int bd = max_edits + 1;
    for (int i = 0; i < n; i++) {
        int d = cnn_edit_distance(name, name_of(table[i]));
        if (d < bd) bd = d, best = name_of(table[i]);
    }
    return best;
}

const char *cnn_registry_list(const void *const *table, int n, const char *last_sep, char *buf, size_t cap)
{
    if (buf[0]) return buf;
    size_t len = 0;
    for (int i = 0; i < n && len < cap; i++) {
        const char *sep = i == 0 ? "" : i == n - 1 ? last_sep : ", ";
        int k = snprintf(buf + len, cap - len, "%s%s", sep, name_of(table[i]));
        len += k > 0 ? (size_t)k : 0;
    }
    return buf;
}
