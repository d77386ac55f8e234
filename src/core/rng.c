#include "core/rng.h"

/* The splitmix64 finaliser is a bijection with full avalanche; applying it to a key that mixes seed,
 * stream and counter through distinct odd constants gives independent-looking streams cheaply. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t cnn_rng_bits(uint64_t seed, uint64_t stream, uint64_t counter)
{
    uint64_t k = mix64(seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL);
    k = mix64(k ^ (stream * 0xd6e8feb86659fd93ULL));
    return mix64(k ^ (counter * 0x9e3779b97f4a7c15ULL + 0x8cb92ba72f3d8dd7ULL));
}

float cnn_rng_uniform(uint64_t seed, uint64_t stream, uint64_t counter)
{
    return (float)(cnn_rng_bits(seed, stream, counter) >> 40) * (1.0f / 16777216.0f);
}

uint32_t cnn_rng_below(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t n)
{
    /* Lemire's multiply-shift on 32 random bits: bias below 2^-32 * n, irrelevant for shuffles. */
    uint64_t r = cnn_rng_bits(seed, stream, counter) >> 32;
    return (uint32_t)((r * n) >> 32);
}

void cnn_rng_shuffle(uint64_t seed, uint64_t stream, int32_t *idx, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)cnn_rng_below(seed, stream, (uint64_t)i, (uint32_t)i + 1);
        int32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
