/* Lookups shared by the type registries (layers, callbacks, optimizers). A registry is a table of n pointers
 * to entries (layer ops, callback kinds, optimizer ops), each a struct whose first member is its Keras class
 * name (const char *), so finding, suggesting and listing work the same for all three. */
#ifndef CNN_CORE_REGISTRY_H
#define CNN_CORE_REGISTRY_H

#include <stddef.h>

/* The entry called name, or NULL. */
const void *cnn_registry_find(const void *const *table, int n, const char *name);
/* The name nearest to a misspelt one, within max_edits edits (the first of equally near ones), or NULL. */
const char *cnn_registry_suggest(const void *const *table, int n, const char *name, int max_edits);
/* The names joined by ", " (the last one by last_sep) into buf, once: a registry never changes. */
const char *cnn_registry_list(const void *const *table, int n, const char *last_sep, char *buf, size_t cap);

#endif
