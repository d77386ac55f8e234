/* Keras's legacy HDF5 weight files (model.save_weights("x.h5")), read and written through libhdf5. */
#ifndef CNN_IO_KERAS_H5_H
#define CNN_IO_KERAS_H5_H

#include "cnnlab.h"

/* Loads the weights of path into m by name, as cnn_model_load_keras_weights does, but requires only the
 * layers [first, first + count) to receive all their tensors from the file (and the file to hold nothing
 * else). The model is unchanged when it fails. */
int cnn_keras_h5_load_layers(cnn_model *m, const char *path, int first, int count);

#endif
