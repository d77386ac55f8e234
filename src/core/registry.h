/* Lookups shared by the type registries (layers, callbacks, optimizers): each is a table of n entries whose
 * Keras class names name_at(i) gives, so finding, suggesting and listing work the same for all three. */
#ifndef CNN_CORE_REGISTRY_H
#define CNN_CORE_REGISTRY_H

#include <stddef.h>

typedef const char *(*cnn_name_at_fn)(int i);

/* Index of the entry called name, or -1. */
int cnn_registry_index(cnn_name_at_fn name_at, int n, const char *name);
/* The name nearest to a misspelt one, within max_edits edits (the first of equally near ones), or NULL. */
const char *cnn_registry_suggest(cnn_name_at_fn name_at, int n, const char *name, int max_edits);
/* The names joined by ", " (the last one by last_sep) into buf, once: a registry never changes. */
const char *cnn_registry_list(cnn_name_at_fn name_at, int n, const char *last_sep, char *buf, size_t cap);

#endif
