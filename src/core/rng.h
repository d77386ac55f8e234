/* Counter-based random numbers: every draw is a pure function of (seed, stream, counter), so a value does
 * not depend on which thread draws it or in which order — the root of bit-reproducible parallel runs.
 * Streams separate uses (one per parameter tensor, per epoch's shuffle, per dropout call). */
#ifndef CNN_CORE_RNG_H
#define CNN_CORE_RNG_H

#include <stdint.h>

/* Stream tags, combined with an index (tensor number, epoch, step) by cnn_rng_stream(). */
enum { CNN_STREAM_INIT = 1, CNN_STREAM_SHUFFLE = 2, CNN_STREAM_DROPOUT = 3, CNN_STREAM_AUGMENT = 4 };

static inline uint64_t cnn_rng_stream(int tag, uint64_t index)
{
    return ((uint64_t)tag << 56) ^ index;
}

/* 64 random bits. */
uint64_t cnn_rng_bits(uint64_t seed, uint64_t stream, uint64_t counter);
/* Uniform in [0, 1) with 24 bits of precision (exactly representable in float). */
float cnn_rng_uniform(uint64_t seed, uint64_t stream, uint64_t counter);
/* Uniform integer in [0, n) without modulo bias worth noting (n < 2^32). */
uint32_t cnn_rng_below(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t n);
/* Fisher-Yates shuffle of idx[0..n) driven by (seed, stream). */
void cnn_rng_shuffle(uint64_t seed, uint64_t stream, int32_t *idx, int n);

#endif
