/* Internal constructors of the library's batch sources (the public ones are in cnnlab.h). */
#ifndef CNN_MODEL_SOURCE_H
#define CNN_MODEL_SOURCE_H

#include "cnnlab.h"

/* The dataset source with an optional transform (NULL) and a name for its messages. */
cnn_source *cnn_source_dataset_make(const cnn_dataset *ds, int batch_size, int shuffle, uint64_t seed,
                                    const cnn_transform *t, const char *name);
/* A dataset source that takes ownership of *ds (emptied): it is freed with the source. */
cnn_source *cnn_source_owned_dataset(cnn_dataset *ds, int batch_size, int shuffle, uint64_t seed,
                                     const char *name);

#endif
