/*
 * cnnlab: train, compare and ship image classifiers in C.
 *
 * Conventions of this API
 *  - Every exported name starts with cnn_ (types, functions) or CNN_ (constants).
 *  - Functions that can fail return an int: 0 on success, a negative cnn_status on failure. The reason is
 *    then available from cnn_errmsg() (per thread) as one line naming the file, offset, layer or option
 *    concerned and what was expected. The library never prints errors itself and never calls exit().
 *  - Objects come in create/free pairs; free functions accept NULL.
 *  - Images are float32, laid out NHWC (Keras's channels_last), so a Keras user's shapes read the same; a
 *    data set may keep them as bytes, converted as batches are filled (cnn_dataset).
 */
#ifndef CNNLAB_H
#define CNNLAB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CNN_VERSION "0.1.0"

/* Marks the API's functions: the library is built with -fvisibility=hidden, so these are the only symbols its
 * shared object exports (tests/check_exports.sh checks it). */
#if defined(__GNUC__)
#define CNN_API __attribute__((visibility("default")))
#else
#define CNN_API
#endif

/* ---------------------------------------------------------------- errors */

typedef enum {
    CNN_OK = 0,
    CNN_ERR_INVALID = -1,   /* bad argument or option */
    CNN_ERR_NOMEM = -2,     /* allocation failed */
    CNN_ERR_IO = -3,        /* a file could not be opened, read or written */
    CNN_ERR_FORMAT = -4,    /* a file's content is not what was expected */
    CNN_ERR_SHAPE = -5,     /* layer shapes do not fit together */
    CNN_ERR_STATE = -6,     /* call made in the wrong state (e.g. training an unbuilt model) */
    CNN_ERR_NONFINITE = -7, /* training diverged: a loss, output or gradient is NaN or infinite */
} cnn_status;

/* The last error message of the calling thread ("" when none). */
CNN_API const char *cnn_errmsg(void);
/* The status of the last error of the calling thread. */
CNN_API int cnn_errcode(void);

/* ---------------------------------------------------------------- runtime */

/* Number of physical cores (the default thread count). */
CNN_API int cnn_physical_cores(void);

/* ---------------------------------------------------------------- kernel paths */

/* The instruction-set path of cnnlab's kernels: "avx512", "avx2" or "generic" (portable C). One binary
 * carries all three; the first use picks the best this CPU has (cpuid), unless the environment variable
 * CNNLAB_ISA names one (avx512, avx2, generic or auto). Results are bit-identical for any thread count and on
 * every path (the portable path emulates the vector paths' fused multiply-adds exactly, at a fraction of
 * their speed). */
CNN_API const char *cnn_isa_name(void);
/* Selects a path by name (NULL: CNNLAB_ISA as above). Fails with CNN_ERR_INVALID for an unknown name or a
 * path this CPU lacks, naming what it lacks; the path in use is then unchanged. Call it between training
 * steps. */
CNN_API int cnn_set_isa(const char *name);
/* The multiply-add peak of the path in use on all threads (cnn_get_threads), in GFLOP/s: independent chains
 * of vector multiply-adds and nothing else, best of 3 runs of about 30 ms. What a kernel's rate is judged
 * against. */
CNN_API double cnn_fma_peak_gflops(void);
/* The same for BF16 products (vdpbf16ps: two multiply-adds per FP32 lane), measured the same way; 0 where
 * precision "bf16" cannot run (cnn_precision_check: no AVX512_BF16, or a path other than avx512). About twice
 * cnn_fma_peak_gflops where the CPU gives BF16 its full rate (AMD Zen 4); less where it does not (0.44-0.51x
 * measured on an Intel Xeon of family 6 model 207, without AMX), and there bf16 is slower than fp32. */
CNN_API double cnn_bf16_peak_gflops(void);

/* ---------------------------------------------------------------- data */

/* A labelled image set: n images of h*w*c values (NHWC) and their n labels y. The values are held in one of
 * two forms: bytes (x NULL), value i being the float32 (float)bytes[i] / divisor, converted a batch at a time
 * as the model reads it (the IDX readers keep pixels so, divisor 255: a quarter of the memory of floats, the
 * same bits as Keras's x.astype('float32') / 255); or x, float32 values used as they are (bytes NULL). */
typedef struct cnn_dataset {
    float *x;
    uint8_t *bytes;
    float divisor;
    int32_t *y;
    int n, h, w, c;
    int num_classes; /* 1 + the largest label */
} cnn_dataset;

/* Reads an IDX image file and an IDX label file (plain or gzip-compressed, detected by content).
 * Validates magic numbers, dimensions, counts and sizes; pixels are kept as bytes with divisor 255 (values in
 * [0, 1]). labels_path may be NULL: images to predict, whose labels are all -1 (unknown) and num_classes 0.
 */
CNN_API int cnn_dataset_load_idx(cnn_dataset *ds, const char *images_path, const char *labels_path);
/* Loads the four standard files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
 * t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) from dir. train may be NULL: then only the two
 * t10k files are read (and need exist). */
CNN_API int cnn_dataset_load_dir(const char *dir, cnn_dataset *train, cnn_dataset *test);
/* Splits off the last fraction of src into val (Keras's validation_split: the tail, before shuffling). */
CNN_API int cnn_dataset_split(const cnn_dataset *src, double fraction, cnn_dataset *train, cnn_dataset *val);
/* Copies images [start, start+count) of src into dst, in src's form (bytes stay bytes). */
CNN_API int cnn_dataset_slice(const cnn_dataset *src, int start, int count, cnn_dataset *dst);
/* Writes images [start, start+count) of ds as float32 values into out (count*h*w*c floats), whichever form
 * ds holds them in. */
CNN_API int cnn_dataset_images(const cnn_dataset *ds, int start, int count, float *out);
CNN_API void cnn_dataset_free(cnn_dataset *ds);

/* Debian's Fashion-MNIST location, the default data. */
#define CNN_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
/* English Fashion-MNIST class name of label 0..9, or NULL. */
CNN_API const char *cnn_fashion_class_name(int label);

/* ---------------------------------------------------------------- models */

typedef struct cnn_model cnn_model;

typedef enum {
    CNN_ACT_LINEAR = 0,
    CNN_ACT_RELU,
    CNN_ACT_SOFTMAX,
    CNN_ACT_TANH,
    CNN_ACT_SIGMOID,
    CNN_ACT_LEAKY_RELU, /* slope 0.2 (tf.nn.leaky_relu); the LeakyReLU layer defaults to 0.3 */
    CNN_ACT_ELU,
    CNN_ACT_GELU,
} cnn_activation;

/* A sequential model whose samples have shape h x w x c (use h = w = 1 for vectors). */
CNN_API cnn_model *cnn_model_create(const char *name, int h, int w, int c);
CNN_API void cnn_model_free(cnn_model *m);

/* Appends a layer by its Keras class name and Keras-named options, e.g.
 *   cnn_model_add(m, "Dense", "units=256, activation=relu, name=Hidden_Layer_1");
 * Unknown layers or options, and bad values, are errors that name the offending word. */
CNN_API int cnn_model_add(cnn_model *m, const char *type, const char *options);
/* Typed shorthands for the common layers. name may be NULL (Keras-style automatic names). */
CNN_API int cnn_model_add_flatten(cnn_model *m, const char *name);
CNN_API int cnn_model_add_dense(cnn_model *m, const char *name, int units, cnn_activation act);

/* Infers every shape, allocates the parameters and initialises them (glorot_uniform kernels, zero biases),
 * all from seed. Shape errors name the layer. */
CNN_API int cnn_model_build(cnn_model *m, uint64_t seed);

/* Marks the named layer trainable or frozen. Frozen parameters receive no update, frozen layers compute no
 * weight gradients, and a frozen BatchNormalization runs in inference mode. On a compiled model nothing else
 * changes: the optimizer keeps its configuration, learning rate, iteration count and every slot (a layer
 * frozen and later unfrozen resumes from the moments it had), as a Keras user who recompiles with the same
 * optimizer object gets; only the set of parameters updated changes. */
CNN_API int cnn_model_set_trainable(cnn_model *m, const char *layer_name, int trainable);
/* Number of leading layers that form a frozen, deterministic prefix: no trainable parameters, nothing random
 * (Dropout) and no training-mode behaviour, so their output for a sample never changes during training. */
CNN_API int cnn_model_frozen_prefix(const cnn_model *m);

CNN_API int cnn_model_num_layers(const cnn_model *m);
/* Name of layer i (0-based), or NULL when out of range. */
CNN_API const char *cnn_model_layer_name(const cnn_model *m, int i);
CNN_API const char *cnn_model_name(const cnn_model *m);
CNN_API size_t cnn_model_num_params(const cnn_model *m, int trainable_only);
/* Number of values the model outputs per sample (the size of its last layer's output: the number of classes
 * for a classifier). */
CNN_API int cnn_model_num_outputs(const cnn_model *m);
/* Output shape of layer i per sample (i = -1: the model's input; i = num_layers - 1: its output). */
CNN_API int cnn_model_layer_shape(const cnn_model *m, int i, int *h, int *w, int *c);
/* Index of the named layer, or -1. */
CNN_API int cnn_model_find_layer(const cnn_model *m, const char *name);

/* ---------------------------------------------------------------- tensors */

/* One parameter or state tensor of a model, named as Keras names weights ("conv2d/kernel", "dense_1/bias",
 * "batch_normalization/moving_mean"). data and grad point into the model's buffers and stay valid until the
 * model is freed. Shapes are Keras's: Dense kernel (in, units), Conv2D kernel (kh, kw, cin, cout). */
typedef struct cnn_tensor {
    char name[96]; /* "<layer>/<weight>" */
    int layer;     /* index of the layer that owns it */
    int rank;
    int dim[4];
    size_t size; /* number of floats */
    float *data;
    float *grad;   /* its gradient; NULL for state (BatchNorm moving statistics) */
    int trainable; /* the optimizer updates it now (a weight of a trainable layer) */
} cnn_tensor;

/* Tensors in layer order, each layer's in Keras's weight order (kernel, bias; gamma, beta, moving_mean,
 * moving_variance). Fails on an unbuilt model or an index out of range. */
CNN_API int cnn_model_num_tensors(const cnn_model *m);
CNN_API int cnn_model_tensor(cnn_model *m, int i, cnn_tensor *t);
/* Finds a tensor by its full name; CNN_ERR_INVALID naming the model when there is none. */
CNN_API int cnn_model_find_tensor(cnn_model *m, const char *name, cnn_tensor *t);

/* Prints the Keras-style summary table. */
CNN_API void cnn_model_summary(const cnn_model *m, FILE *out);

/* ---------------------------------------------------------------- optimizers */

typedef enum { CNN_OPT_ADAM = 0, CNN_OPT_SGD, CNN_OPT_RMSPROP } cnn_optimizer_kind;

/* Keras defaults: Adam beta1 0.9, beta2 0.999, epsilon 1e-7; SGD momentum 0, nesterov off;
 * RMSprop rho 0.9, epsilon 1e-7. */
typedef struct cnn_optimizer_config {
    cnn_optimizer_kind kind;
    double learning_rate;
    double beta_1, beta_2, epsilon; /* Adam (epsilon also RMSprop) */
    double momentum;                /* SGD */
    int nesterov;                   /* SGD */
    double rho;                     /* RMSprop */
} cnn_optimizer_config;

CNN_API cnn_optimizer_config cnn_optimizer_default(cnn_optimizer_kind kind, double learning_rate);

/* The loss, chosen at compile. Labels are class indices (Keras's sparse categorical cross-entropy).
 *  - from_logits = 0 (Keras's default): the model's output are probabilities, so it must end in a softmax
 *    (Dense(activation=softmax), Activation(softmax) or Softmax()). As Keras does, the loss is computed
 *    from the logits under that softmax, with a stable log-sum-exp.
 *  - from_logits = 1: the output are logits (the last layer has no softmax); predict returns them as they
 *    are.
 * Either way the output must be a vector of at least two values per sample (one per class). */
typedef enum { CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY = 0 } cnn_loss_kind;
typedef struct cnn_loss_config {
    cnn_loss_kind kind;
    int from_logits;
} cnn_loss_config;

/* Chooses the optimizer (state reset) and the loss. Must follow cnn_model_build. cnn_model_compile uses
 * sparse categorical cross-entropy on probabilities (from_logits = 0). */
CNN_API int cnn_model_compile(cnn_model *m, const cnn_optimizer_config *opt);
CNN_API int cnn_model_compile_loss(cnn_model *m, const cnn_optimizer_config *opt,
                                   const cnn_loss_config *loss);
/* The learning rate and the number of optimizer updates taken (Keras's optimizer.iterations). Both belong
 * to the model's execution state, with the optimizer's slots. */
CNN_API double cnn_model_learning_rate(const cnn_model *m);
CNN_API void cnn_model_set_learning_rate(cnn_model *m, double lr);
CNN_API long cnn_model_iterations(const cnn_model *m);

/* The precision of the model's convolutions and Dense products: "fp32" (the default) or "bf16", where each
 * product rounds both of its inputs to BF16 (round to nearest even) and accumulates in FP32 (vdpbf16ps);
 * the weights, the optimizer and everything else stay FP32, and results stay bit-identical for any thread
 * count. bf16 needs a CPU with AVX512_BF16 and the avx512 kernel path: elsewhere (or with CNNLAB_ISA=avx2 or
 * generic) the call fails with CNN_ERR_INVALID saying what is missing, and the precision is unchanged.
 * cnn_precision_check answers the same question without a model. */
CNN_API int cnn_precision_check(const char *precision);
CNN_API int cnn_model_set_precision(cnn_model *m, const char *precision);
CNN_API const char *cnn_model_precision(const cnn_model *m);

/* ---------------------------------------------------------------- low-level step API */

/* Sets the number of threads used by cnnlab's loops and by BLAS (default: physical cores). */
CNN_API void cnn_set_threads(int threads);
CNN_API int cnn_get_threads(void);

/* Forward pass on n samples x (n*h*w*c floats). probs, if not NULL, receives n*classes probabilities.
 * training selects training behaviour (dropout, batch statistics). */
CNN_API int cnn_model_forward(cnn_model *m, const float *x, int n, int training, float *probs);
/* Loss (mean cross-entropy plus regularisation) and correct-prediction count of the last forward pass
 * against labels y, and backward pass filling the gradients. */
CNN_API int cnn_model_backward(cnn_model *m, const int32_t *y, double *loss, int *correct);
/* One optimizer update of all trainable parameters from the current gradients. */
CNN_API int cnn_model_update(cnn_model *m);
/* One full training step: forward, backward, update. */
CNN_API int cnn_model_train_step(cnn_model *m, const float *x, const int32_t *y, int n, double *loss,
                                 int *correct);

/* Per-layer profiling: with on, every forward and backward pass times each layer (counters reset). */
CNN_API int cnn_model_profile(cnn_model *m, int on);
/* Prints per layer: forward and backward milliseconds per pass, forward GFLOP and the GFLOP/s reached;
 * gemm_gflops (may be NULL) gives, per layer, the rate of a bare sgemm of that layer's GEMM shape measured
 * by the caller, so each layer's share of it is shown; peak_gflops (> 0, e.g. cnn_fma_peak_gflops()) adds
 * each layer's forward and backward share of the multiply-add peak (0 leaves those columns out). */
CNN_API void cnn_model_profile_print(const cnn_model *m, const double *gemm_gflops, double peak_gflops,
                                     FILE *out);
/* The (M, N, K) of layer i's forward GEMM for a batch of n; 0 when the layer has none. */
CNN_API int cnn_model_layer_gemm(const cnn_model *m, int i, int n, int mnk[3]);

/* Measures the GFLOP/s of a bare cblas_sgemm (row-major C = A*B, M x K times K x N) on this machine with the
 * current thread count: the median of reps timed calls after one warm-up. Negative on allocation failure. */
CNN_API double cnn_sgemm_gflops(int m, int n, int k, int reps);

/* Direct access to the contiguous parameter and gradient buffers (length cnn_model_num_params(m, 0)). */
CNN_API float *cnn_model_params(cnn_model *m);
CNN_API float *cnn_model_grads(cnn_model *m);

/* ---------------------------------------------------------------- training */

typedef struct cnn_epoch_log {
    int epoch; /* 0-based */
    double loss, accuracy;
    double val_loss, val_accuracy; /* NaN when there is no validation data */
    double lr;                     /* learning rate used during the epoch */
    double seconds;                /* wall time of the training pass (no validation) */
    double val_seconds;
} cnn_epoch_log;

typedef struct cnn_history {
    cnn_epoch_log *epochs;
    int count, cap;
    int stopped_epoch; /* epoch after which training stopped early, or -1 */
    char stop_reason[128];
} cnn_history;

CNN_API void cnn_history_free(cnn_history *h);
/* Writes the history as CSV (atomically). */
CNN_API int cnn_history_save_csv(const cnn_history *h, const char *path);
CNN_API int cnn_history_save_json(const cnn_history *h, const char *path);

/* What on_train_batch_end sees of a training batch. */
typedef struct cnn_batch_log {
    int epoch, batch;                /* 0-based */
    int size;                        /* samples in the batch */
    double loss;                     /* this batch's loss (mean cross-entropy plus regularisation) */
    double accuracy;                 /* this batch's accuracy */
    double mean_loss, mean_accuracy; /* running epoch means so far, as Keras's batch logs report them */
} cnn_batch_log;

/* Callbacks: hooks called by cnn_model_fit, in list order; any may be NULL. A hook returns 0 or a negative
 * cnn_status, which ends fit with that error. A hook may change the learning rate
 * (cnn_model_set_learning_rate) or set *stop to end training (after the current batch or epoch).
 *  - on_train_batch_begin/end: Keras's on_train_batch_begin/end, around each training step.
 *  - on_gradients: after the backward pass and before the optimizer update, with the gradients in
 *    cnn_model_grads(m) (and the tensors' grad views). The place to reduce gradients across processes, clip
 *    them, or check them; what it leaves there is what the optimizer applies. */
typedef struct cnn_callback cnn_callback;
struct cnn_callback {
    const char *name;
    void *state;
    int (*on_train_begin)(cnn_callback *cb, cnn_model *m);
    int (*on_epoch_begin)(cnn_callback *cb, cnn_model *m, int epoch);
    int (*on_train_batch_begin)(cnn_callback *cb, cnn_model *m, int epoch, int batch);
    int (*on_gradients)(cnn_callback *cb, cnn_model *m, int epoch, int batch);
    int (*on_train_batch_end)(cnn_callback *cb, cnn_model *m, const cnn_batch_log *log, int *stop);
    int (*on_epoch_end)(cnn_callback *cb, cnn_model *m, const cnn_epoch_log *log, int *stop);
    int (*on_train_end)(cnn_callback *cb, cnn_model *m, const cnn_history *h);
    void (*destroy)(cnn_callback *cb); /* releases what the callback holds; called by cnn_callback_free */
    /* Optional, for exact resume (cnn_fit_config.backup_path): the callback's state as bytes and back.
     * state_save writes state_size bytes to buf; state_load receives them after on_train_begin of the resumed
     * fit. A callback whose behaviour depends on past epochs must provide all three. */
    size_t (*state_size)(const cnn_callback *cb, const cnn_model *m);
    void (*state_save)(const cnn_callback *cb, const cnn_model *m, void *buf);
    int (*state_load)(cnn_callback *cb, cnn_model *m, const void *buf, size_t len);
};

/* Frees any callback made by a cnn_callback_* constructor (NULL is fine). */
CNN_API void cnn_callback_free(cnn_callback *cb);

/* Keras LearningRateScheduler: at the start of every epoch, lr <- schedule(epoch, lr, params).
 * params (params_size bytes) is copied into the callback. */
typedef double (*cnn_schedule_fn)(int epoch, double lr, const void *params);
CNN_API cnn_callback *cnn_callback_lr_scheduler(cnn_schedule_fn schedule, const void *params,
                                                size_t params_size);

/* The study's schedules (0-based epochs), computed in float32 as TensorFlow does:
 *   step: lr while epoch < thresh, then the fixed value lr_after ("scheduler": thresh 7, lr_after 0.001)
 *   exp:  lr while epoch < thresh, then lr * e^-0.1 every epoch ("scheduler_exp") */
typedef struct cnn_step_schedule {
    int thresh;
    double lr_after;
} cnn_step_schedule;
CNN_API double cnn_schedule_step(int epoch, double lr, const void *params); /* params: cnn_step_schedule */
CNN_API double cnn_schedule_exp(int epoch, double lr, const void *params);  /* params: int thresh */

/* ---- more Keras callbacks (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint, schedules) */

/* The monitoring callbacks take Keras-named options as text, e.g. "monitor=val_loss, patience=5"; unknown or
 * misspelt options are errors with a suggestion. monitor is one of loss, accuracy, val_loss, val_accuracy;
 * mode is auto (max for the accuracies, min for the losses), min or max. Epochs are 0-based throughout. A
 * validation quantity in a fit without validation data is skipped, as Keras skips a missing log key. */

/* Keras 2.15 EarlyStopping. Options and defaults: monitor=val_loss, min_delta=0, patience=0, mode=auto,
 * baseline (none), restore_best_weights=false, start_from_epoch=0. Epochs before start_from_epoch are
 * ignored. Every tracked epoch adds 1 to wait; an improvement (beyond min_delta) records the best value and,
 * with restore_best_weights, a copy of all parameters (BatchNorm statistics included), and resets wait when
 * it also beats baseline. On an epoch without improvement, wait >= patience (and epoch > 0) stops training,
 * and only then are the best parameters restored (the first tracked epoch's if none improved); reaching the
 * last epoch restores nothing. The copy is allocated in on_train_begin and freed in on_train_end; after a
 * failed fit (which skips on_train_end) it is kept for the callback's next fit. The callback's name, which
 * fit writes into cnn_history.stop_reason when it stops training, ends with the best epoch and the epoch
 * restored. */
CNN_API cnn_callback *cnn_callback_early_stopping(const char *options);

typedef struct cnn_early_stopping_info {
    double best;        /* best monitored value (+-inf before the first tracked epoch) */
    int best_epoch;     /* epoch of best, -1 before any improvement */
    int wait;           /* Keras's wait counter */
    int stopped_epoch;  /* epoch at which this callback stopped training, -1 if it did not */
    int restored_epoch; /* epoch whose parameters it restored, -1 if none */
} cnn_early_stopping_info;
/* Fails with CNN_ERR_INVALID when cb is not an EarlyStopping callback. */
CNN_API int cnn_early_stopping_get_info(const cnn_callback *cb, cnn_early_stopping_info *info);

/* Keras 2.15 ReduceLROnPlateau. Options and defaults: monitor=val_loss, factor=0.1 (in [0, 1)), patience=10,
 * mode=auto, min_delta=1e-4, cooldown=0, min_lr=0. Improvement: current < best - min_delta (max: current >
 * best + min_delta). After patience epochs without one (outside cooldown), if the float32 lr exceeds min_lr:
 * lr <- float32(max(lr * factor, min_lr)), then cooldown starts and wait restarts. A LearningRateScheduler
 * later in the list sets lr again at the next epoch's start, so with a schedule that ignores its lr argument
 * the reduction never takes effect (the study's step schedule from epoch 7 on). */
CNN_API cnn_callback *cnn_callback_reduce_lr_on_plateau(const char *options);

typedef struct cnn_reduce_lr_info {
    double best;    /* best monitored value (+-inf before the first epoch) */
    int wait;       /* epochs without improvement since the last improvement or reduction */
    int cooldown;   /* epochs of cooldown left */
    int reductions; /* reductions made in this fit */
    int last_epoch; /* epoch of the last reduction, -1 if none */
    double last_lr; /* the lr it set last (0 if none) */
} cnn_reduce_lr_info;
CNN_API int cnn_reduce_lr_get_info(const cnn_callback *cb, cnn_reduce_lr_info *info);

/* Keras 2.15 ModelCheckpoint plus the study's CustomModelCheckpoint epoch file. Options and defaults:
 * monitor=val_loss, mode=auto, save_best_only=false, save_weights_only=false, initial_value_threshold (none).
 * At each epoch end the model is saved to filepath with cnn_model_save (atomically; missing folders are
 * created): every epoch, or with save_best_only only on a strict improvement (current < best, max: >). The
 * best value is kept across fits, as Keras keeps it for the life of the callback. cnnlab has one model
 * format, so save_weights_only writes the same file (the architecture it adds is a few hundred bytes).
 * filepath is used as given (no Keras {epoch} formatting). The file carries its own record (the epoch of its
 * weights, the best value, the epoch-file number; cnn_checkpoint_read), written in the same atomic step as
 * the weights. If epoch_path is not NULL, the epoch number is then written there as text whenever
 * current <= best (max: >=), so an exact tie with the best rewrites it without saving new weights (the model
 * file is rewritten with its own weights and the new number). The epoch file is a copy of the record, for
 * people and scripts; cnnlab never reads it back (a resume takes the record from the model file). */
CNN_API cnn_callback *cnn_callback_model_checkpoint(const char *filepath, const char *epoch_path,
                                                    const char *options);

typedef struct cnn_checkpoint_info {
    double best;     /* best monitored value (save_best_only; +-inf or the threshold before any) */
    int saved_epoch; /* epoch of the last model file written, -1 if none */
    int saves;       /* model files written */
    int epoch_file;  /* last epoch written to the epoch file, -1 if none */
} cnn_checkpoint_info;
CNN_API int cnn_checkpoint_get_info(const cnn_callback *cb, cnn_checkpoint_info *info);
/* The record a checkpoint file written by ModelCheckpoint carries (saves: the callback's count when the file
 * was written). Fails with the reason for a damaged file or a model file that is not a checkpoint. */
CNN_API int cnn_checkpoint_read(const char *path, cnn_checkpoint_info *info);

/* More schedules for cnn_callback_lr_scheduler. They compute the lr from the epoch alone (the lr argument is
 * ignored); invalid parameters give NaN, which LearningRateScheduler reports as an error. */

/* Keras CosineDecay with one step per epoch, in float32 as TensorFlow computes it:
 *   lr = initial_lr * ((1 - alpha) * 0.5 * (1 + cos(pi * min(e, decay_steps) / decay_steps)) + alpha).
 * With warmup_target > 0 (Keras: not None) the lr first rises linearly from initial_lr to warmup_target over
 * warmup_steps epochs, then decays from warmup_target over decay_steps epochs. */
typedef struct cnn_cosine_schedule {
    double initial_lr;
    int decay_steps;      /* >= 1 */
    double alpha;         /* final lr as a fraction of the start, default 0 */
    int warmup_steps;     /* default 0 */
    double warmup_target; /* default 0: no warm-up */
} cnn_cosine_schedule;
CNN_API double cnn_schedule_cosine(int epoch, double lr,
                                   const void *params); /* params: cnn_cosine_schedule */

/* PyTorch OneCycleLR with one step per epoch (in double, as PyTorch computes it): from max_lr/div_factor up
 * to max_lr over the first pct_start of total_epochs, then down to max_lr/(div_factor*final_div_factor) at
 * the last epoch, with cosine annealing (or linear). three_phase: up, back down to the start, then to the
 * minimum. Momentum is not cycled. Like PyTorch, epochs beyond total_epochs and a warm-up phase of zero
 * length are errors. */
typedef struct cnn_one_cycle_schedule {
    double max_lr;
    int total_epochs;
    double pct_start;        /* default 0.3 */
    double div_factor;       /* default 25 */
    double final_div_factor; /* default 1e4 */
    int three_phase;         /* default 0 */
    int linear;              /* anneal_strategy 'linear' instead of 'cos' */
} cnn_one_cycle_schedule;
/* The PyTorch defaults for max_lr and total_epochs. */
CNN_API cnn_one_cycle_schedule cnn_one_cycle_default(double max_lr, int total_epochs);
CNN_API double cnn_schedule_one_cycle(int epoch, double lr,
                                      const void *params); /* params: cnn_one_cycle_schedule */

/* Keras PiecewiseConstantDecay by epoch, float32: values[0] while e <= boundaries[0], values[i] while
 * boundaries[i-1] < e <= boundaries[i], values[n] after boundaries[n-1]. Boundaries must increase. */
#define CNN_PIECEWISE_MAX 16
typedef struct cnn_piecewise_schedule {
    int n; /* number of boundaries, 0 .. CNN_PIECEWISE_MAX - 1 */
    int boundaries[CNN_PIECEWISE_MAX - 1];
    double values[CNN_PIECEWISE_MAX]; /* n + 1 values */
} cnn_piecewise_schedule;
CNN_API double cnn_schedule_piecewise(int epoch, double lr,
                                      const void *params); /* params: cnn_piecewise_schedule */

/* ---- end of callbacks */

/* ---- batch sources
 *
 * fit, evaluate and predict take their batches from a source: a fixed number of batches per epoch, batch i
 * of epoch e filled on request into buffers the model owns. Sources are called from the thread that runs
 * fit and may use every thread inside fill (the library's own sources do). A source may feed a later layer
 * than the first (first_layer): the cached-features source feeds the layer after a frozen prefix. */
typedef struct cnn_source cnn_source;
struct cnn_source {
    const char *name;
    void *state;
    int h, w, c;     /* shape of one sample it yields */
    int batches;     /* batches per epoch */
    int batch_size;  /* the most samples in one batch */
    int samples;     /* samples per epoch (the sum of the batch sizes) */
    int labeled;     /* fill writes labels */
    int first_layer; /* index of the layer its samples feed (0: the model's input) */
    /* Optional: called before the first batch of each epoch. */
    int (*begin_epoch)(cnn_source *s, int epoch);
    /* Writes batch `batch` of epoch `epoch`: *n samples (1..batch_size) into x (n*h*w*c floats) and, when
     * labeled, n labels into y. Returns 0 or a negative cnn_status with cnn_errmsg set. */
    int (*fill)(cnn_source *s, int epoch, int batch, float *x, int32_t *y, int *n);
    /* Optional: called after the last batch of each epoch. */
    int (*end_epoch)(cnn_source *s, int epoch);
    void (*destroy)(cnn_source *s); /* called by cnn_source_free */
};
CNN_API void cnn_source_free(cnn_source *s);

/* The in-memory dataset in batches of batch_size (the last one partial), in an order shuffled every epoch
 * from (seed, epoch) when shuffle is set: exactly the batches cnn_model_fit has always drawn. ds is not
 * copied and must outlive the source. */
CNN_API cnn_source *cnn_source_dataset(const cnn_dataset *ds, int batch_size, int shuffle, uint64_t seed);

/* A per-sample transform (data augmentation). apply writes the transformed sample `in` (h x w x c, NHWC) to
 * `out` (out_h x out_w x out_c). It is called concurrently from several threads, so it must draw its
 * randomness only from (seed, epoch, index) — index is the sample's position in the dataset, not in the
 * batch — for instance with cnn_random_uniform(seed, epoch, index, k) for its k-th number; the result is
 * then independent of the thread count and of the batch order. */
typedef struct cnn_transform {
    int out_h, out_w, out_c; /* 0: the input's */
    void *ctx;
    void (*apply)(void *ctx, const float *in, int h, int w, int c, float *out, uint64_t seed, int epoch,
                  int index);
} cnn_transform;
/* The dataset source with t applied to every sample of every batch, in parallel over the batch's samples. t
 * (not ctx) is copied. */
CNN_API cnn_source *cnn_source_transform(const cnn_dataset *ds, int batch_size, int shuffle, uint64_t seed,
                                         const cnn_transform *t);
/* The k-th uniform number in [0, 1) of a (seed, epoch, index) draw: counter-based, the same on any thread. */
CNN_API double cnn_random_uniform(uint64_t seed, int epoch, int index, int k);

/* A Keras Sequence: `batches` batches, batch i built by get(ctx, i, x, y, &n). With shuffle the batch order
 * is shuffled every epoch from (seed, epoch), as Keras 2's fit does for a Sequence with shuffle=True; the
 * batches themselves do not change. With memoize each batch is built once and kept (batches * batch_size
 * samples of memory). */
typedef int (*cnn_sequence_fn)(void *ctx, int index, float *x, int32_t *y, int *n);
CNN_API cnn_source *cnn_source_sequence(int batches, int batch_size, int h, int w, int c, cnn_sequence_fn get,
                                        void *ctx, int shuffle, uint64_t seed, int memoize);

/* Cached features: runs layers 0..through (a frozen, deterministic prefix, see cnn_model_frozen_prefix) of m
 * once over ds in inference mode and serves their outputs, shuffled as cnn_source_dataset(ds, batch_size,
 * shuffle, seed) would, to layer through + 1. Training the rest of the model on it gives the same weights,
 * bit for bit, as running the prefix on every batch. Fails naming the first layer that is trainable or
 * random. *seconds (may be NULL) receives the time the prefix pass took. */
CNN_API cnn_source *cnn_source_features(cnn_model *m, int through, const cnn_dataset *ds, int batch_size,
                                        int shuffle, uint64_t seed, double *seconds);

/* ---- fit */

typedef enum { CNN_VERBOSE_SILENT = 0, CNN_VERBOSE_AUTO, CNN_VERBOSE_BAR, CNN_VERBOSE_LINE } cnn_verbosity;

typedef struct cnn_fit_config {
    int epochs;
    int batch_size;                /* cnn_model_fit's dataset source */
    int shuffle;                   /* reshuffle the training order every epoch (default 1) */
    uint64_t seed;                 /* shuffling and dropout */
    const cnn_dataset *validation; /* validation data, or NULL */
    cnn_source *validation_source; /* or validation batches from a source (takes precedence) */
    cnn_verbosity verbose;
    FILE *out; /* progress output (default stdout) */
    cnn_callback **callbacks;
    int num_callbacks;
    /* Keras's BackupAndRestore: with backup_path set, fit writes the whole training state there (weights,
     * optimizer slots, learning rate, iteration count, RNG position, history, every callback's state and the
     * position in the epoch), atomically, at the end of every epoch and, with backup_minutes > 0, after the
     * first batch that ends that many minutes after the last write. When the file exists as fit starts, fit
     * restores it and continues from there: an interrupted fit ends with the same weights, bit for bit, as
     * one that ran through (same seed and threads). The file is left for the caller to remove. */
    const char *backup_path;
    double backup_minutes;
    /* Data-parallel ranks other than the writer: restore from backup_path as fit starts but never write it.
     * The writer's callbacks that this process does not run (checkpoints, TensorBoard) are skipped in the
     * backup; the others must be the same, in the same order. */
    int backup_restore_only;
    /* Data-parallel training (see cnn_source_dataset_shard): each process trains and validates on its share
     * of every batch. reduce (NULL: one process) replaces sums[0..count) by their totals over the processes,
     * the same on every process; fit calls it with {loss x samples, correct, samples} of each epoch's
     * training pass and of its validation pass, so the epoch logs, the history and every callback's decision
     * are those of the whole data. */
    int (*reduce)(void *ctx, double *sums, int count);
    void *reduce_ctx;
    /* One process computing each batch's gradient as `batch_slices` data-parallel processes do (0 or 1: the
     * whole batch at once): the batch is cut into the slices of cnn_shard_range, each slice runs forward and
     * backward on its own (cnn_model_set_batch_share) and the slices' gradients are added in slice order.
     * The weights then equal, bit for bit, those of that many processes whose reduction adds in rank order
     * (two processes always do; cnnlab's CLI does for any number). BatchNorm then normalises per slice, as
     * unsynchronised processes do. For one process only: it sets the batch share (cnn_model_set_batch_share)
     * of every slice itself. */
    int batch_slices;
} cnn_fit_config;

/* The checks cnn_model_fit and cnn_model_evaluate make of a dataset before using it: not empty, samples of
 * the model's input size, every label in [0, outputs). what names the data in messages ("training"). A
 * caller that knows where the data came from runs it first, to name the files when it fails. */
CNN_API int cnn_model_check_dataset(const cnn_model *m, const cnn_dataset *ds, const char *what);

CNN_API cnn_fit_config cnn_fit_default(void);
/* fit fills *hist afresh (free an earlier history first); on failure it holds the epochs that finished.
 * Training stops with CNN_ERR_NONFINITE at the first NaN or infinite loss or gradient, naming the epoch, the
 * batch and the first layer whose output or gradient went non-finite; the weights are then those before that
 * batch. */
/* Trains on the dataset in batches of cfg->batch_size (a dataset source). */
CNN_API int cnn_model_fit(cnn_model *m, const cnn_dataset *train, const cnn_fit_config *cfg,
                          cnn_history *hist);
/* Trains on the batches of a source (cfg->batch_size, shuffle and the source's seed are the source's). */
CNN_API int cnn_model_fit_source(cnn_model *m, cnn_source *train, const cnn_fit_config *cfg,
                                 cnn_history *hist);

/* Loss and accuracy over a dataset, in batches of batch_size (inference behaviour). */
CNN_API int cnn_model_evaluate(cnn_model *m, const cnn_dataset *ds, int batch_size, double *loss,
                               double *accuracy);
CNN_API int cnn_model_evaluate_source(cnn_model *m, cnn_source *src, double *loss, double *accuracy);
/* The model's output for n samples: out receives n * cnn_model_num_outputs(m) floats (class probabilities
 * for a softmax classifier; a headless model's last-layer output). */
CNN_API int cnn_model_predict(cnn_model *m, const float *x, int n, int batch_size, float *out);
/* cnn_model_predict over ds->n images, which must have the model's input shape (h, w, c): a CNN_ERR_SHAPE
 * error naming both shapes otherwise. Labels are not used. */
CNN_API int cnn_model_predict_dataset(cnn_model *m, const cnn_dataset *ds, int batch_size, float *out);
/* The output for every sample of the source's epoch 0, in batch order. */
CNN_API int cnn_model_predict_source(cnn_model *m, cnn_source *src, float *out);

/* ---- data-parallel training
 *
 * N processes (MPI ranks) train one model on the same global batches: rank r of N reads only its contiguous
 * slice of every batch, the gradients are combined between backward and update (the on_gradients hook) and
 * every rank takes the same optimizer step. The library has no transport of its own; the caller supplies the
 * reduction (cnnlab's CLI uses Open MPI, src/cli/mpi*.c). */

/* Rank `rank` of `ranks`'s share of batch `batch` of a dataset of n samples in batches of batch_size: samples
 * [*start, *start + *count) of the epoch's order, *count = floor((b+1)/N) - floor(b/N) of the batch's size b,
 * and the batch's size in *total (may be NULL). Fails when the arguments are out of range. */
CNN_API int cnn_shard_range(int n, int batch_size, int batch, int rank, int ranks, int *start, int *count,
                            int *total);
/* The dataset source of rank `rank` of `ranks`: the batches of cnn_source_dataset(ds, batch_size, shuffle,
 * seed), in the same shuffled order, each cut to this rank's slice (cnn_shard_range). Fails, naming the
 * batch, when some batch has fewer samples than there are ranks (a rank would get none). */
CNN_API cnn_source *cnn_source_dataset_shard(const cnn_dataset *ds, int batch_size, int shuffle,
                                             uint64_t seed, int rank, int ranks);
/* Rank `rank` of `ranks`'s share of every batch of any source (a study generator, a sequence): each batch is
 * made whole, in a buffer of inner->batch_size samples allocated here, and cut to the rank's slice
 * (cnn_shard_range over inner->samples in batches of inner->batch_size), so every rank gets the slice it
 * would get from cnn_source_dataset_shard. Every batch but the last must be full (fill fails naming the batch
 * otherwise) and the last must hold a sample for every rank. Takes inner, which is freed with the result or
 * when this fails. A dataset or transform source is better cut where it reads (cnn_source_dataset_shard,
 * cnn_spec_train_source_shard): each rank then reads and transforms only its samples. */
CNN_API cnn_source *cnn_source_shard(cnn_source *inner, int rank, int ranks);
/* This process holds the samples [first, first + n) of a global batch of `total` samples; set before each
 * step (0, 0: one process with the whole batch). Random draws per sample (Dropout masks) then equal those one
 * process draws for the same samples; the loss gradient is scaled by 1 / total, so that the processes'
 * gradients add up to the batch's mean gradient; the regularisation gradient and BatchNorm's moving
 * statistics are left to the process holding the batch's first sample (first == 0), so that they count once.
 */
CNN_API void cnn_model_set_batch_share(cnn_model *m, int first, int total);
/* Synchronised BatchNorm: in training, BatchNormalization layers total their batch sums with reduce (the
 * contract of cnn_fit_config.reduce: sums[0..count) replaced by their totals over the processes, the same
 * bits on every process), so that every process normalises with the global batch's statistics, as one
 * process with the whole batch does. NULL: each process's own batch (PyTorch DDP's default). fit fails with
 * the reduction's error after the step in which it failed. */
CNN_API void cnn_model_set_batch_sync(cnn_model *m, int (*reduce)(void *ctx, double *sums, int count),
                                      void *ctx);
/* Cached features shared by the processes: rank `rank` of `ranks` runs the prefix (cnn_source_features) over
 * its block of ds only, samples [floor(n r / N), floor(n (r+1) / N)), and gather(ctx, feats, per_sample, n)
 * fills in the other blocks (an allgather of per_sample floats per sample in those blocks; returns 0 or a
 * negative status). The source then serves this rank's share of every batch, as cnn_source_dataset_shard
 * does: the features are the same bits whichever process computed them, so the weights are those of the
 * uncached data-parallel run. */
typedef struct cnn_feature_share {
    int rank, ranks;
    int (*gather)(void *ctx, float *feats, size_t per_sample, int n);
    void *ctx;
} cnn_feature_share;
CNN_API cnn_source *cnn_source_features_shard(cnn_model *m, int through, const cnn_dataset *ds,
                                              int batch_size, int shuffle, uint64_t seed,
                                              const cnn_feature_share *share, double *seconds);

/* ---------------------------------------------------------------- run record */

/* Everything one training run produced, kept by the library and saved as one JSON file (run.json): the
 * history, the best epochs and why training stopped, the final test metrics with the confusion matrix and
 * every test prediction, and the timings. The CLI, `study` and the report read runs only through it. */
typedef struct cnn_run {
    char model[64];
    char weights[64]; /* where the starting weights came from ("init seed 1", "imagenet", ...) */
    uint64_t seed;
    int threads, batch_size, train_images;
    cnn_history history;
    int best_epoch;              /* the study's rule (spec 3.8), 0-based; -1 with no validation */
    int best_val_loss_epoch;     /* last epoch with the lowest val_loss, -1 when none */
    int best_val_accuracy_epoch; /* last epoch with the highest val_accuracy, -1 when none */
    char precision[8];           /* "fp32" or "bf16" (cnn_model_set_precision); "fp32" in older records */
    double seconds_per_epoch;    /* mean training-pass time */
    double images_per_second;    /* training images per second of training pass */
    double total_seconds;        /* all epochs, validation included */
    /* test-set results of the final weights (cnn_run_evaluate); evaluated = 0 before */
    int evaluated;
    int n_test, classes;
    double test_loss, test_accuracy, roc_auc_ovo, roc_auc_ovr; /* ROC-AUC NaN when a class is missing */
    int64_t *confusion;                                        /* classes x classes, row = true class */
    int32_t *y_true, *y_pred;                                  /* n_test each */
    float *probs;                                              /* n_test x classes */
} cnn_run;

/* A run record for a model name: zeroed, epochs -1. */
CNN_API void cnn_run_init(cnn_run *r, const char *model);
CNN_API void cnn_run_free(cnn_run *r);
/* Computes the best epochs and the timings from r->history (after fit). */
CNN_API void cnn_run_summarize(cnn_run *r);
/* Evaluates m on test: loss, accuracy, predictions, confusion matrix and both ROC-AUCs. */
CNN_API int cnn_run_evaluate(cnn_run *r, cnn_model *m, const cnn_dataset *test, int batch_size);
/* The same from a source's epoch 0 in batch order (an unshuffled source: the order of labels[0..n)), e.g. the
 * test set's cached features of a frozen prefix, so that the prefix does not run again. */
CNN_API int cnn_run_evaluate_source(cnn_run *r, cnn_model *m, cnn_source *test, const int32_t *labels, int n);
/* Saves (atomically) and loads the whole record as JSON; a load checks every field and names the first
 * one that is missing or malformed, and a save refuses a record that a load would refuse (a precision other
 * than fp32 or bf16). */
CNN_API int cnn_run_save(const cnn_run *r, const char *path);
CNN_API int cnn_run_load(cnn_run *r, const char *path);
/* The run's headline figures as a small JSON file (metrics.json): test accuracy, loss and ROC-AUC, epochs,
 * best epoch (0-based), timings, stop reason and weights. */
CNN_API int cnn_run_save_metrics(const cnn_run *r, const char *path);
/* The stop reason as a person reads it: the callbacks that stopped training, or "reached the last epoch". */
CNN_API const char *cnn_run_stop_reason(const cnn_run *r);
/* The label every table and chart puts after the model's name when its VGG16 base started from Keras's
 * random initialisation instead of ImageNet weights (weights saying CNN_RUN_RANDOM_BASE), else "": such
 * results must never pass for ImageNet ones. */
#define CNN_RUN_RANDOM_BASE "random (NOT ImageNet)"
CNN_API const char *cnn_run_base_label(const cnn_run *r);

/* ---------------------------------------------------------------- saved models */

/* Saves architecture, parameters (and layer state such as BatchNorm statistics) as a versioned,
 * checksummed file, written atomically. */
CNN_API int cnn_model_save(const cnn_model *m, const char *path);
/* With CNN_SAVE_OPTIMIZER the optimizer's configuration, step count and state are saved too, so a loaded
 * model (which then comes back compiled) continues training exactly where it stopped. */
#define CNN_SAVE_OPTIMIZER 1u
CNN_API int cnn_model_save_ex(const cnn_model *m, const char *path, unsigned flags);
/* Loads a model saved by cnn_model_save; every inconsistency is reported by name. */
CNN_API cnn_model *cnn_model_load(const char *path);
/* The spec text a model was built from (saved with it), or NULL; set copies it. */
CNN_API int cnn_model_set_spec_text(cnn_model *m, const char *text);
CNN_API const char *cnn_model_spec_text(const cnn_model *m);

/* ---------------------------------------------------------------- Keras HDF5 weights */

/* Keras's legacy weight files, as model.save_weights("x.h5") writes them and as Keras downloads the weights
 * of its applications (vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5): a group per layer, datasets named
 * "<layer>/kernel:0" (or, in older files, "<layer>_W_1:0"), float32 in Keras's shapes (Conv2D kernels HWIO).
 */

/* Consecutive layers that Keras sees as one layer: a nested model such as Keras's VGG16 base, which
 * summaries show as one row "vgg16 (Functional)" and weight files store as one group. */
typedef struct cnn_layer_group {
    char name[64]; /* "vgg16" */
    char type[32]; /* "Functional" */
    int first, count;
} cnn_layer_group;

/* Loads every weight of the file into the model tensor of the same name (Keras's load_weights): each dataset
 * must name a tensor of the model, with its shape and dtype float32, and every tensor of the model must be in
 * the file. Errors name the file, the group and the dataset; the model is unchanged when loading fails. */
CNN_API int cnn_model_load_keras_weights(cnn_model *m, const char *path);
/* Writes the model's weights in that layout (atomically), so that Keras's load_weights reads them into the
 * same architecture; groups (may be NULL when ngroups is 0) become one Keras layer each. */
CNN_API int cnn_model_save_keras_weights(cnn_model *m, const cnn_layer_group *groups, int ngroups,
                                         const char *path);
/* The summary table with each group as one row (its output shape and parameter count), as Keras prints a
 * nested model; expand lists the group's layers under it. */
CNN_API void cnn_model_summary_grouped(const cnn_model *m, const cnn_layer_group *groups, int ngroups,
                                       int expand, FILE *out);

/* ---------------------------------------------------------------- model specs */

/* A model spec file holds a model's architecture and its whole training recipe in Keras's words
 * (format: docs/spec-format.md). Errors name file, line and column. */
typedef struct cnn_spec cnn_spec;

CNN_API cnn_spec *cnn_spec_load(const char *path);
/* Parses text; origin names it in error messages (a file name). */
CNN_API cnn_spec *cnn_spec_parse(const char *text, const char *origin);
CNN_API void cnn_spec_free(cnn_spec *s);
CNN_API const char *cnn_spec_name(const cnn_spec *s);
/* The text the spec was parsed from (saved with trained models, compared to reuse results). */
CNN_API const char *cnn_spec_text(const cnn_spec *s);
/* The input shape of one sample. */
CNN_API void cnn_spec_input_shape(const cnn_spec *s, int *h, int *w, int *c);

/* Creates, builds (from seed) and compiles the spec's model with its optimizer. */
CNN_API cnn_model *cnn_spec_build_model(const cnn_spec *s, uint64_t seed);

/* Pretrained weights (a VGG16(weights=...) base, see docs/spec-format.md). set overrides every base's weights
 * argument: "none" (Keras's random initialisation), "imagenet" or a file. pretrained writes into buf (cap
 * bytes) and returns what the spec's model starts from ("imagenet", a file, "none"), or NULL when it has no
 * pretrained part. check fails, with the message saying what is missing and where to put it, when a weights
 * file cannot be found; cnn_spec_build_model loads them (and fails the same way). */
CNN_API int cnn_spec_set_pretrained(cnn_spec *s, const char *weights);
CNN_API const char *cnn_spec_pretrained(const cnn_spec *s, char *buf, size_t cap);
CNN_API int cnn_spec_check_pretrained(const cnn_spec *s);
/* The nested models of the spec (its VGG16 bases), as groups of the built model's layers, for
 * cnn_model_summary_grouped and cnn_model_save_keras_weights. Returns how many (at most cap are written). */
CNN_API int cnn_spec_layer_groups(const cnn_spec *s, cnn_layer_group *groups, int cap);

/* The spec's training settings. validation is "test", "split" (validation_split holds the fraction) or
 * "none"; precision "fp32" or "bf16" (for cnn_model_set_precision). */
typedef struct cnn_spec_fit {
    int epochs, batch_size, shuffle;
    uint64_t seed;
    char validation[16];
    double validation_split;
    char precision[8];
} cnn_spec_fit;
CNN_API void cnn_spec_fit_settings(const cnn_spec *s, cnn_spec_fit *out);

/* Creates the spec's callbacks in file order. Checkpoint files go into out_dir; with out_dir NULL there are
 * no files, so the spec's ModelCheckpoint callbacks are left out (*count says how many were made). The caller
 * frees each with cnn_callback_free and the array with free(). */
CNN_API int cnn_spec_callbacks(const cnn_spec *s, const char *out_dir, cnn_callback ***callbacks, int *count);

/* ---------------------------------------------------------------- augmentation */

/* The study's per-image transform (spec 5.1): scikit-image's warp, then its rotate, both bilinear with
 * constant fill 0 and each clipped to the range of its input as scikit-image does:
 *   mid(r, c) = in(s*r + ty, s*c + tx)                     (scaling about the top-left corner)
 *   out       = mid rotated by angle degrees counter-clockwise about ((w-1)/2, (h-1)/2)
 * in and out hold one channel of h x w floats and must not overlap. The arithmetic follows scikit-image's
 * float32 path, so the result matches it to rounding. Fails only on bad sizes or, for images larger than
 * 64x64, when its scratch image cannot be allocated. */
CNN_API int cnn_augment_study(const float *in, float *out, int h, int w, double s, int tx, int ty, int angle);
/* Its random parameters, drawn in the study's order from (seed, epoch, index) with cnn_random_uniform:
 * s ~ U(0.8, 1.2), then integers tx, ty uniform in [-6, 5], then an integer angle uniform in [-30, 29]. */
CNN_API void cnn_augment_study_draw(uint64_t seed, int epoch, int index, double *s, int *tx, int *ty,
                                    int *angle);

/* The study's generator DataImageGenerator_batch (spec 5.2) over ds (one channel), as a memoised, shuffled
 * sequence source: L = ceil(2N/B) batches per epoch and H = floor(L/2); batch j < H holds the originals
 * j*B .. min(j*B+B, N)-1 (so the last N - H*B images are never used); batch j >= H is the study's transform
 * of every image of original batch j mod H (batch 0 twice, independently), with that batch's labels. Each
 * augmented batch is made once, when first asked for, and reused unchanged in every epoch; with shuffle (the
 * study's, and Keras's default) the batch order is shuffled every epoch from seed. In batch j, image i of ds
 * is transformed with the parameters cnn_augment_study_draw(seed, j, i). With augmented_only, all L batches
 * are augmented ones (batch j is made from original batch j mod H), the substitute for the study's unknown
 * Model_2_s2_igen_only. ds must outlive the source. */
CNN_API cnn_source *cnn_source_study_augment(const cnn_dataset *ds, int batch_size, int shuffle,
                                             uint64_t seed, int augmented_only);

/* Keras-style random augmentation: ImageDataGenerator's geometric options (Keras 2.15 semantics), plus random
 * erasing (Zhong et al., 2017) and pad-and-crop. A sample is transformed as Keras's apply_transform does
 * (rotation, shift, shear and zoom about the centre in one bilinear resampling, then the flips), then cropped
 * from its zero-padded copy, then erased. */
typedef enum { CNN_FILL_CONSTANT = 0, CNN_FILL_NEAREST, CNN_FILL_REFLECT, CNN_FILL_WRAP } cnn_fill_mode;
typedef struct cnn_augment {
    double rotation_range;     /* degrees: theta ~ U(-r, r) */
    double width_shift_range;  /* < 1: U(-f, f) times the width; a whole number n >= 1: Keras's integer
                                  shifts, +-(0..n-1) pixels; otherwise U(-f, f) pixels */
    double height_shift_range; /* the same for the height */
    double zoom_range[2];      /* zx, zy ~ U(lo, hi) independently; (1, 1): no zoom */
    double shear_range;        /* degrees: U(-r, r) */
    int horizontal_flip, vertical_flip;
    cnn_fill_mode fill_mode; /* scipy.ndimage's modes as Keras uses them (quirks included) */
    double cval;             /* the constant fill value */
    double erasing_p;        /* probability of erasing a rectangle (0: never) */
    double erasing_scale[2]; /* its area as a fraction of the image: U(lo, hi) */
    double erasing_ratio[2]; /* its aspect ratio height/width: U(lo, hi) */
    double erasing_value;    /* its fill; negative: uniform random values in [0, 1) */
    int crop_padding;        /* pad by this many zero pixels on every side, then crop at a random offset */
} cnn_augment;

/* One sample's drawn parameters (Keras's transform_parameters, plus the crop and the erased rectangle). */
typedef struct cnn_augment_params {
    double theta, tx, ty, shear, zx, zy; /* tx: rows (height shift), ty: columns, as Keras names them */
    int flip_horizontal, flip_vertical;
    int crop_y, crop_x;                     /* offset into the padded image, 0 .. 2 * crop_padding */
    int erase_y, erase_x, erase_h, erase_w; /* erase_h = 0: nothing erased */
    uint64_t erase_key;                     /* the random fill's values come from it */
} cnn_augment_params;

/* No augmentation: ranges 0, zoom (1, 1), fill constant 0; erasing off with Zhong et al.'s defaults (area
 * 0.02 .. 0.4, ratio 0.3 .. 1/0.3, random values). */
CNN_API cnn_augment cnn_augment_default(void);
/* Checks every field's range, naming the first bad one. */
CNN_API int cnn_augment_check(const cnn_augment *a);
/* Draws one sample's parameters for an h x w image from (seed, epoch, index). */
CNN_API void cnn_augment_draw(const cnn_augment *a, int h, int w, uint64_t seed, int epoch, int index,
                              cnn_augment_params *p);
/* Applies fixed parameters (Keras's ImageDataGenerator.apply_transform for the geometric part) to one
 * h x w x c sample; in and out must not overlap. */
CNN_API void cnn_augment_apply(const cnn_augment *a, const cnn_augment_params *p, const float *in, int h,
                               int w, int c, float *out);
/* a as a per-sample transform for cnn_source_transform (a is not copied and must outlive it). */
CNN_API cnn_transform cnn_augment_transform(const cnn_augment *a);

/* Augmentation and weights in specs (docs/spec-format.md): the source a spec's `augment:` section trains on,
 * over train with the fit settings f (batch size, shuffle, seed). *src is NULL when the spec has no augment
 * section: train on the dataset as usual. The caller frees the source. */
CNN_API int cnn_spec_train_source(const cnn_spec *s, const cnn_dataset *train, const cnn_spec_fit *f,
                                  cnn_source **src);
/* cnn_spec_train_source for rank `rank` of `ranks` data-parallel processes: the same batches, each cut to
 * the rank's slice (cnn_shard_range); random augmentation transforms only the rank's samples. */
CNN_API int cnn_spec_train_source_shard(const cnn_spec *s, const cnn_dataset *train, const cnn_spec_fit *f,
                                        int rank, int ranks, cnn_source **src);
/* What `cnnlab augment` draws: training images first .. first+n-1 as the spec's augment: section transforms
 * them for training with the fit settings f (batch size, seed) — with the study's generator, in its first
 * augmented batch (made from original batch 0; the pictures of spec §5), with random augmentation, with the
 * draws of epoch 0. out receives n samples of the training images' shape; *study (may be NULL) says whether
 * the section is the study's generator. Fails when the spec has no augment: section or the images are not
 * all in the first batch (0 .. min(batch size, images) - 1). */
CNN_API int cnn_spec_augment_sample(const cnn_spec *s, const cnn_dataset *train, const cnn_spec_fit *f,
                                    int first, int n, float *out, int *study);
/* The model whose trained weights the spec starts from (`initial_weights: NAME`), or NULL. */
CNN_API const char *cnn_spec_initial_weights(const cnn_spec *s);
/* Keras's dst.set_weights(src.get_weights()): copies every tensor (weights and state such as BatchNorm
 * statistics) of src into dst, tensor by tensor in order, after checking that all shapes agree. dst's
 * optimizer is untouched, so a freshly compiled dst starts from src's weights with a fresh optimizer. */
CNN_API int cnn_model_set_weights_from(cnn_model *dst, cnn_model *src);

/* ---------------------------------------------------------------- metrics */

/* Evaluation metrics, checked against scikit-learn 1.2 (tests/data/metrics_ref.txt). Labels are class
 * indices 0..k-1; scores are n rows of k floats (row-major, as cnn_model_predict writes them).
 * NULL arrays, n < 1, k too small, a label outside 0..k-1 and a NaN or infinite score are
 * CNN_ERR_INVALID, with the offending index in the message. */

/* Predicted labels: the index of each row's largest score; ties go to the first index (np.argmax). */
CNN_API int cnn_argmax_rows(const float *scores, int n, int k, int32_t *pred);
/* Fraction of samples with y_pred == y_true (sklearn's accuracy_score). */
CNN_API int cnn_accuracy(const int32_t *y_true, const int32_t *y_pred, int n, int k, double *accuracy);
/* k x k counts, row-major: cm[t * k + p] = samples of true class t predicted as p (sklearn's
 * confusion_matrix with labels 0..k-1). */
CNN_API int cnn_confusion_matrix(const int32_t *y_true, const int32_t *y_pred, int n, int k, int64_t *cm);

typedef struct cnn_prf {
    double precision, recall, f1;
    int64_t support; /* true samples of the class; for an average, all n samples */
} cnn_prf;

/* sklearn's precision_recall_fscore_support: per_class (k entries, may be NULL) and the macro and
 * support-weighted averages (may be NULL). A 0/0 ratio counts as 0 (sklearn's default zero_division);
 * F1 = 2pr/(p+r). Like sklearn's default labels, the averages cover only the classes that occur in
 * y_true or y_pred; a class in neither gets an all-zero entry and no say in the macro average. */
CNN_API int cnn_classification_metrics(const int32_t *y_true, const int32_t *y_pred, int n, int k,
                                       cnn_prf *per_class, cnn_prf *macro, cnn_prf *weighted);

/* sklearn's classification_report text, byte for byte: one row per class present in y_true or y_pred
 * (as sklearn's default labels), then accuracy, macro avg and weighted avg. target_names (k entries,
 * UTF-8, or NULL for the label numbers) name classes by label; digits (0..17) is sklearn's digits, 2 by
 * default. Writes the NUL-terminated text to buf (size bytes); *length (optional) receives its length
 * without the NUL, also when buf is too small (an error) or NULL with size 0 (a size query). */
CNN_API int cnn_classification_report(const int32_t *y_true, const int32_t *y_pred, int n, int k,
                                      const char *const *target_names, int digits, char *buf, size_t size,
                                      size_t *length);
/* The same report written to out. */
CNN_API int cnn_classification_report_print(const int32_t *y_true, const int32_t *y_pred, int n, int k,
                                            const char *const *target_names, int digits, FILE *out);
/* The study's target name "<label> - <class name left-aligned in 11 characters>", e.g. "1 - Trouser    "
 * (width counted in UTF-8 characters, as Python does). */
CNN_API int cnn_target_name(int label, const char *class_name, char *buf, size_t size);

/* Binary ROC-AUC of y_true (0 or 1; both must occur) against score: the Mann-Whitney statistic with
 * ties counted 1/2, which equals sklearn's trapezoidal roc_auc_score. O(n log n), deterministic. */
CNN_API int cnn_roc_auc_binary(const int32_t *y_true, const float *score, int n, double *auc);
/* Multiclass ROC-AUC, sklearn's roc_auc_score(multi_class="ovo", average="macro") (Hand & Till): for each
 * pair a < b, over the samples of class a or b, (AUC(y == a, scores[:, a]) + AUC(y == b, scores[:, b])) / 2,
 * averaged over the k(k-1)/2 pairs. Every class 0..k-1 must occur in y_true (sklearn raises too); a
 * missing class is an error that names it. Scores need not sum to one (sklearn insists on it). */
CNN_API int cnn_roc_auc_ovo(const int32_t *y_true, const float *scores, int n, int k, double *auc);
/* sklearn's roc_auc_score(multi_class="ovr", average="macro"): mean over classes c of
 * AUC(y == c, scores[:, c]). Every class must occur in y_true. */
CNN_API int cnn_roc_auc_ovr(const int32_t *y_true, const float *scores, int n, int k, double *auc);

/* ---- end of metrics */

/* ---------------------------------------------------------------- report
 *
 * The study's pictures (PNG, drawn with cairo and DejaVu fonts), TensorBoard event files and zip archives,
 * all from run records (cnn_run), so that every picture can be drawn again from saved runs without training.
 * Pictures are written atomically, as PNG, or as SVG when the path ends in ".svg". */

/* Class names of the pictures: English or the study's Ukrainian names. */
typedef enum { CNN_LABELS_EN = 0, CNN_LABELS_UK } cnn_labels;
/* Fashion-MNIST class name of label 0..9 in that language (UTF-8), or NULL. */
CNN_API const char *cnn_fashion_class_name_in(int label, cnn_labels lang);

/* The two-panel learning curves <model>_ca.png (spec 3.8): loss (y 0-1) and accuracy (y 70-100%), train
 * solid, validation dashed, the green dotted "Early stop: N (loss|accuracy|epoch)" marker at r->best_epoch
 * with the "Lowest value" and "(xx.xx%)" annotations. Needs a history with at least one epoch. */
CNN_API int cnn_plot_curves(const cnn_run *r, const char *path);
/* The confusion matrix <model>_cm.png (viridis, counts), title "Confusion matrix for: '<model>'". Needs an
 * evaluated run. */
CNN_API int cnn_plot_confusion(const cnn_run *r, const char *path);
/* Every run's test accuracy as bars (va.png, or sorted ascending: va_sorted.png), the value on top with 4
 * significant digits and "ROC-AUC: x" at the bar base. Colours follow the given (study) order. */
CNN_API int cnn_plot_accuracy_bars(const cnn_run *const *runs, int n, int sorted, const char *path);
/* predict.png: 50 test images drawn from seed (the same 50 for the same seed and test set size) in a 5 x 10
 * grid with the predicted class; wrong predictions in a red colour map under a red "true / [predicted]"
 * title. test must be the set r was evaluated on (its labels are checked against r->y_true). */
CNN_API int cnn_plot_predictions(const cnn_run *r, const cnn_dataset *test, uint64_t seed, cnn_labels lang,
                                 const char *path);
/* rgb_data.png: the first n images of ds (n <= 64) shown channel by channel, one row per image ("Image i,
 * label: L", "chanel c : 'R'"); a one-channel set is first copied to three channels, as the study's NumPy
 * gray->RGB step. */
CNN_API int cnn_plot_rgb_channels(const cnn_dataset *ds, int n, const char *path);
/* layer_resize_nn.png: the c maps (1..16) of one sample's layer output (h x w x c, NHWC) side by side in
 * viridis, under title ("Layer resizing Feature Maps"). */
CNN_API int cnn_plot_feature_maps(const float *maps, int h, int w, int c, const char *title,
                                  const char *path);
/* Rows of images, each row titled (image_genarator.png: "Original images ...", then "Transformed images
 * ..."): rows[r] holds n images of h x w x c (first channel shown, gray_r); 1..16 rows of 1..32 images. */
CNN_API int cnn_plot_image_rows(const float *const *rows, int nrows, int n, int h, int w, int c,
                                const char *const *titles, const char *path);
/* The indices of the n test images cnn_plot_predictions draws (n <= n_test). */
CNN_API int cnn_predict_sample(int n_test, uint64_t seed, int32_t *idx, int n);

/* Releases the font caches cairo and fontconfig keep for the life of the process once text has been drawn.
 * Only leak checkers care: call it once at exit, after the last picture (cnnlab's main does, with atexit). */
CNN_API void cnn_report_cleanup(void);

/* A TensorBoard callback writing what Keras 2.15's TensorBoard(histogram_freq=1, write_images=True) writes
 * into log_dir/train and log_dir/validation, every epoch: the scalars epoch_loss and epoch_accuracy (both),
 * the learning rate at the epoch's end as epoch_learning_rate and epoch_lr (train; Keras uses either name),
 * evaluation_{loss,accuracy}_vs_iterations (validation), and a histogram ("<layer>/<weight>_0/histogram")
 * and an image ("..._0/image", three for a convolution kernel) of every weight tensor. Put it last in the
 * callback list, as the study does. Event files (TFRecord-framed Event protobufs with masked CRC-32C) are
 * rewritten atomically at each epoch end; the graph is not written. */
CNN_API cnn_callback *cnn_callback_tensorboard(const char *log_dir);
/* Checks a TFRecord file's framing and both CRCs of every record; *records (may be NULL) receives their
 * number. A bad checksum is CNN_ERR_FORMAT naming the record and its offset. */
CNN_API int cnn_tfrecord_check(const char *path, int *records);
/* CRC-32C (Castagnoli) of len bytes, continuing crc (0 to start); the CPU's crc32 instruction when
 * present. */
CNN_API uint32_t cnn_crc32c(uint32_t crc, const void *data, size_t len);

/* Writes a zip archive (atomically) of the regular files under each of dirs whose names end in one of the
 * suffixes (NULL-terminated list; NULL: every file). Entries are named relative to base. */
CNN_API int cnn_zip_tree(const char *zip_path, const char *base, const char *const *dirs, int ndirs,
                         const char *const *suffixes);
/* Extracts every entry of a zip archive under dest (which must exist); entries with absolute paths or ".."
 * are refused. */
CNN_API int cnn_unzip(const char *zip_path, const char *dest);

/* ---- end of report */

/* ---------------------------------------------------------------- files */

/* Writes len bytes to path atomically: a temporary file in the same folder, fsync, rename. path must be a
 * regular file (or a symbolic link to one) or absent: a device, FIFO or folder is refused, and so is a file
 * marked with cnn_file_protect. */
CNN_API int cnn_write_file_atomic(const char *path, const void *data, size_t len);
/* Marks the existing file path as an input of this run (by device and inode, so any other name for it
 * counts too): cnn_write_file_atomic refuses to replace it until cnn_file_unprotect_all. At most 64. */
CNN_API int cnn_file_protect(const char *path);
CNN_API void cnn_file_unprotect_all(void);
/* Reads the regular file path (anything else is refused: a FIFO would block the reader forever, a device
 * can be endless) of at most max bytes into a new NUL-terminated buffer (*data, freed by the caller). */
CNN_API int cnn_read_file(const char *path, char **data, size_t *len, size_t max);

#ifdef __cplusplus
}
#endif
#endif /* CNNLAB_H */
