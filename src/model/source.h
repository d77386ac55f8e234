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
/* Turns a dataset source made with batch size global_batch into rank `rank` of `ranks`'s share of every
 * batch (cnn_shard_range); local_batch is the largest share (src/dist/shard.c). */
void cnn_source_dataset_set_shard(cnn_source *s, int global_batch, int rank, int ranks, int local_batch);
/* Cuts a dataset source over n samples (made with the global batch size) to rank's share of every batch;
 * fails, naming the batch, when its last batch has fewer samples than there are ranks (src/dist/shard.c). */
int cnn_source_make_shard(cnn_source *s, int n, int rank, int ranks);

#endif
