/* The parallel GEMM of kernels/gemm.h: values against a float64 reference for both ways of reading A and with
 * accumulation, the row blocks handed to the callback (each row once, already final), bit-identity with the
 * single-threaded kernel and across thread counts, and the block sizes; then every kernel path the CPU has
 * against the portable one, gathered against strided reading, B packed against B in place, and 1 against 2
 * threads on each path. (cnn_gemm
 * and cnn_gemm_gather themselves are checked in test_conv.c, next to the convolutions that introduced them.)
 */
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"

/* What the callback saw: how often each row was delivered, and C's rows as they were at that moment. */
typedef struct seen {
    int N;
    const float *c;
    int *count;
    float *snapshot;
} seen;

static void record(void *arg, int first, int rows)
{
    seen *s = arg;
    for (int i = first; i < first + rows; i++) s->count[i]++; /* rows of different calls never overlap */
    memcpy(s->snapshot + (size_t)first * s->N, s->c + (size_t)first * s->N,
           sizeof(float) * (size_t)rows * s->N);
}

/* Shapes from one block to many, with row and column tails, a p count past the kernel's p block, and rows
 * too cheap for 24-row blocks. */
static const int SHAPES[][3] = {{1, 1, 1},     {5, 7, 3},   {24, 64, 16}, {25, 65, 17},    {150, 130, 70},
                                {97, 10, 600}, {513, 3, 2}, {4000, 2, 1}, {61, 200, 1100}, {300, 48, 64}};

static void test_parallel_against_reference(void **state)
{
    (void)state;
    for (size_t t = 0; t < sizeof SHAPES / sizeof SHAPES[0]; t++) {
        const int M = SHAPES[t][0], N = SHAPES[t][1], P = SHAPES[t][2];
        float *a = tu_floats((size_t)M * P), *b = tu_floats((size_t)P * N), *c = tu_floats((size_t)M * N),
              *c0 = tu_floats((size_t)M * N), *snap = tu_floats((size_t)M * N);
        int *count = calloc((size_t)M, sizeof(int));
        assert_non_null(count);
        tu_fill_uniform(a, (size_t)M * P, 23, 1);
        tu_fill_uniform(b, (size_t)P * N, 23, 2);
        tu_fill_uniform(c0, (size_t)M * N, 23, 3);
        for (int trans = 0; trans < 2; trans++)
            for (int acc = 0; acc < 2; acc++) {
                const long sai = trans ? 1 : P, sap = trans ? M : 1;
                memcpy(c, c0, sizeof(float) * (size_t)M * N);
                memset(count, 0, sizeof(int) * (size_t)M);
                seen s = {N, c, count, snap};
                cnn_gemm_parallel(M, N, P, a, sai, sap, b, N, c, N, acc, record, &s);
                for (int i = 0; i < M; i++) {
                    if (count[i] != 1)
                        fail_msg("%dx%dx%d: row %d handed over %d times", M, N, P, i, count[i]);
                    for (int j = 0; j < N; j++) {
                        double r = acc ? c0[i * N + j] : 0.0;
                        for (int p = 0; p < P; p++) r += (double)a[i * sai + p * sap] * b[p * N + j];
                        if (fabs(c[i * N + j] - r) > 1e-4 * (1.0 + fabs(r)))
                            fail_msg("%dx%dx%d trans %d acc %d: C[%d][%d] = %g, expected %g", M, N, P, trans,
                                     acc, i, j, c[i * N + j], r);
                    }
                }
                /* rows were final when handed over */
                assert_memory_equal(snap, c, sizeof(float) * (size_t)M * N);
                /* and NULL means no callback */
                memcpy(snap, c0, sizeof(float) * (size_t)M * N);
                cnn_gemm_parallel(M, N, P, a, sai, sap, b, N, snap, N, acc, NULL, NULL);
                assert_memory_equal(snap, c, sizeof(float) * (size_t)M * N);
            }
        free(a), free(b), free(c), free(c0), free(snap), free(count);
    }
}

/* The parallel GEMM equals the single-threaded one bit for bit, at 1 and 2 threads (on the path in use;
 * test_isa checks every path). */
static void test_parallel_bit_identical(void **state)
{
    (void)state;
    const int keep = cnn_get_threads();
    for (size_t t = 0; t < sizeof SHAPES / sizeof SHAPES[0]; t++) {
        const int M = SHAPES[t][0], N = SHAPES[t][1], P = SHAPES[t][2];
        float *a = tu_floats((size_t)M * P), *b = tu_floats((size_t)P * N), *one = tu_floats((size_t)M * N),
              *two = tu_floats((size_t)M * N), *serial = tu_floats((size_t)M * N);
        tu_fill_uniform(a, (size_t)M * P, 23, 4);
        tu_fill_uniform(b, (size_t)P * N, 23, 5);
        for (int trans = 0; trans < 2; trans++) {
            const long sai = trans ? 1 : P, sap = trans ? M : 1;
            cnn_set_threads(1);
            cnn_gemm_parallel(M, N, P, a, sai, sap, b, N, one, N, 0, NULL, NULL);
            cnn_set_threads(2);
            cnn_gemm_parallel(M, N, P, a, sai, sap, b, N, two, N, 0, NULL, NULL);
            assert_memory_equal(one, two, sizeof(float) * (size_t)M * N);
            cnn_gemm(M, N, P, a, sai, sap, b, N, serial, N, 0);
            assert_memory_equal(serial, two, sizeof(float) * (size_t)M * N);
        }
        free(a), free(b), free(one), free(two), free(serial);
    }
    cnn_set_threads(keep);
}

/* Shapes with row, column (for each path's panel width: 8, 16, 64) and p-block (512) tails. */
static const int PATH_SHAPES[][3] = {{1, 1, 1},   {7, 9, 3},       {13, 17, 33},  {24, 64, 16},
                                     {50, 70, 5}, {30, 130, 1030}, {97, 10, 600}, {6, 200, 64}};

/* C of every path against the portable path's C, bit for bit: every kernel sums each element's products in
 * ascending p with one rounding per multiply-add (the vector kernels with FMA instructions, the portable one
 * by emulating them). */
static void test_paths_against_generic(void **state)
{
    (void)state;
    cnn_isa p[CNN_ISA_COUNT];
    const int np = cnn_isa_list(p);
    for (size_t t = 0; t < sizeof PATH_SHAPES / sizeof PATH_SHAPES[0]; t++) {
        const int M = PATH_SHAPES[t][0], N = PATH_SHAPES[t][1], P = PATH_SHAPES[t][2];
        float *a = tu_floats((size_t)M * P), *b = tu_floats((size_t)P * N), *ref = tu_floats((size_t)M * N),
              *c = tu_floats((size_t)M * N);
        tu_fill_uniform(a, (size_t)M * P, 23, 1);
        tu_fill_uniform(b, (size_t)P * N, 23, 2);
        for (int trans = 0; trans < 2; trans++) {
            const long sai = trans ? 1 : P, sap = trans ? M : 1;
            assert_int_equal(cnn_isa_use(CNN_ISA_GENERIC), 0);
            tu_fill_uniform(ref, (size_t)M * N, 23, 3);
            cnn_gemm(M, N, P, a, sai, sap, b, N, ref, N, 1);
            for (int k = 0; k < np; k++) {
                assert_int_equal(cnn_isa_use(p[k]), 0);
                tu_fill_uniform(c, (size_t)M * N, 23, 3);
                cnn_gemm(M, N, P, a, sai, sap, b, N, c, N, 1);
                for (int i = 0; i < M * N; i++)
                    if (memcmp(&c[i], &ref[i], sizeof(float)))
                        fail_msg("%s %dx%dx%d trans %d: C[%d] = %.9g, generic %.9g", cnn_isa_label(p[k]), M,
                                 N, P, trans, i, c[i], ref[i]);
            }
        }
        free(a), free(b), free(ref), free(c);
    }
    assert_int_equal(cnn_set_isa(NULL), 0);
}

/* A float with a random sign, significand and an exponent in [-e, e]; now and then a value that makes the
 * hard cases (exact zero, a power of two, an infinity). */
static float random_float(uint64_t stream, uint64_t i, int e)
{
    const float u = cnn_rng_uniform(29, stream, 3 * i), v = cnn_rng_uniform(29, stream, 3 * i + 1);
    const float kind = cnn_rng_uniform(29, stream, 3 * i + 2);
    const float sign = v < 0.5f ? -1.0f : 1.0f;
    if (kind < 0.01f) return 0.0f * sign;
    if (kind < 0.02f) return ldexpf(sign, (int)(v * 2 * e) - e);
    if (kind < 0.021f) return sign * INFINITY;
    return ldexpf(sign * (1.0f + u), (int)(v * 2 * e) - e);
}

/* The portable kernel's emulated fused multiply-add against the C library's fmaf (exactly rounded): C = 1*c +
 * x*y is the kernel's zeroed accumulator (+0) plus 1*c (exact but for -0), then one fused step. Exponents far
 * apart and close together (cancellation), products that put the sum just short of a tie (which a double
 * rounding breaks the wrong way half of the time; 2^-28 of random cases), zeros, infinities. */
static void test_generic_fma_exact(void **state)
{
    (void)state;
    enum { N = 64, TRIPLES = 200000 };
    float a[N * 2], b[2 * N], c[N * N];
    assert_int_equal(cnn_isa_use(CNN_ISA_GENERIC), 0);
    long checked = 0;
    for (int r = 0; r < TRIPLES / N; r++) {
        const int e = r % 4 == 0 ? 40 : r % 4 == 1 ? 12 : 2, ties = r % 4 == 3;
        for (int i = 0; i < N; i++) {
            const uint64_t k = (uint64_t)r * N + i;
            a[2 * i] = 1.0f, a[2 * i + 1] = random_float(1, k, e);
            b[i] = random_float(2, k, e), b[N + i] = random_float(3, k, e);
            if (ties &&
                isfinite(b[i])) { /* x*y = +-(1 - 2^-46) half an ulp of c: a tie after rounding twice */
                const float half = (nextafterf(fabsf(b[i]), INFINITY) - fabsf(b[i])) / 2;
                a[2 * i + 1] = copysignf(1.0f + 0x1p-23f, a[2 * i + 1]);
                b[N + i] = copysignf((1.0f - 0x1p-23f) * half, b[N + i]);
            }
        }
        /* row i: a = (1, x_i); column j: b = (c_j, y_j); C[i][j] = fma(x_i, y_j, c_j) */
        cnn_gemm(N, N, 2, a, 2, 1, b, N, c, N, 0);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++, checked++) {
                const float want = fmaf(a[2 * i + 1], b[N + j], fmaf(1.0f, b[j], 0.0f)), got = c[i * N + j];
                if (memcmp(&want, &got, sizeof want) && !(isnan(want) && isnan(got)))
                    fail_msg("fma(%a, %a, %a): generic %a, fmaf %a", a[2 * i + 1], b[N + j], b[j], got, want);
            }
    }
    assert_true(checked >= TRIPLES);
    assert_int_equal(cnn_set_isa(NULL), 0);
}

/* Gathering A through offset tables that describe a strided layout is the strided GEMM, bit for bit. */
static void test_gather_is_strided(void **state)
{
    (void)state;
    cnn_isa p[CNN_ISA_COUNT];
    const int np = cnn_isa_list(p);
    enum { M = 29, N = 37, P = 45 };
    float *a = tu_floats(M * P), *b = tu_floats(P * N), *s = tu_floats(M * N), *g = tu_floats(M * N);
    int ri[M], po[P];
    for (int i = 0; i < M; i++) ri[i] = i * P;
    for (int q = 0; q < P; q++) po[q] = q;
    tu_fill_uniform(a, M * P, 23, 4);
    tu_fill_uniform(b, P * N, 23, 5);
    for (int k = 0; k < np; k++) {
        assert_int_equal(cnn_isa_use(p[k]), 0);
        cnn_gemm(M, N, P, a, P, 1, b, N, s, N, 0);
        cnn_gemm_gather(M, N, P, a, ri, po, b, N, g, N, 0);
        assert_memory_equal(s, g, sizeof(float) * M * N);
    }
    free(a), free(b), free(s), free(g);
    assert_int_equal(cnn_set_isa(NULL), 0);
}

/* B packed into 64-column panels (packed by cnn_gemm_pack_b at 1 and at 2 threads) gives the bits of B read
 * in place, on every path: column tails inside a panel, p past the kernels' p block (two blocks of 550),
 * overwriting and accumulating. */
static void test_gather_packed(void **state)
{
    (void)state;
    cnn_isa p[CNN_ISA_COUNT];
    const int np = cnn_isa_list(p), keep = cnn_get_threads();
    enum { M = 29, N = 150, P = 1100, LDB = 160 };
    const size_t packed = cnn_gemm_packed_floats(P, N);
    float *a = tu_floats(M * P), *b = tu_floats(P * LDB), *pk1 = tu_floats(packed), *pk2 = tu_floats(packed),
          *want = tu_floats(M * N), *got = tu_floats(M * N);
    int ri[M], po[P];
    for (int i = 0; i < M; i++) ri[i] = (M - 1 - i) * P; /* rows read out of order */
    for (int q = 0; q < P; q++) po[q] = q;
    tu_fill_uniform(a, M * P, 23, 8);
    tu_fill_uniform(b, P * LDB, 23, 9);
    assert_int_equal(packed, (size_t)P * 192);
    memset(pk1, 0, sizeof(float) * packed), memset(pk2, 0, sizeof(float) * packed);
    cnn_set_threads(1);
    cnn_gemm_pack_b(P, N, b, LDB, pk1);
    cnn_set_threads(2);
    cnn_gemm_pack_b(P, N, b, LDB, pk2);
    assert_memory_equal(pk1, pk2, sizeof(float) * packed);
    assert_true(pk1[cnn_gemm_packed_at(P, 700, 130)] == b[700 * LDB + 130]);
    for (int k = 0; k < np; k++) {
        assert_int_equal(cnn_isa_use(p[k]), 0);
        for (int acc = 0; acc < 2; acc++) {
            tu_fill_uniform(want, M * N, 1, 10);
            memcpy(got, want, sizeof(float) * M * N);
            cnn_gemm_gather(M, N, P, a, ri, po, b, LDB, want, N, acc);
            cnn_gemm_gather_packed(M, N, P, a, ri, po, pk1, got, N, acc);
            assert_memory_equal(want, got, sizeof(float) * M * N);
        }
    }
    free(a), free(b), free(pk1), free(pk2), free(want), free(got);
    cnn_set_threads(keep);
    assert_int_equal(cnn_set_isa(NULL), 0);
}

/* On every path the parallel GEMM equals the single-threaded one, at 1 and 2 threads. */
static void test_gemm_threads(void **state)
{
    (void)state;
    cnn_isa p[CNN_ISA_COUNT];
    const int np = cnn_isa_list(p), keep = cnn_get_threads();
    enum { M = 300, N = 70, P = 600 };
    float *a = tu_floats(M * P), *b = tu_floats(P * N), *one = tu_floats(M * N), *two = tu_floats(M * N),
          *serial = tu_floats(M * N);
    tu_fill_uniform(a, M * P, 23, 6);
    tu_fill_uniform(b, P * N, 23, 7);
    for (int k = 0; k < np; k++) {
        assert_int_equal(cnn_isa_use(p[k]), 0);
        for (int trans = 0; trans < 2; trans++) {
            const long sai = trans ? 1 : P, sap = trans ? M : 1;
            cnn_set_threads(1);
            cnn_gemm_parallel(M, N, P, a, sai, sap, b, N, one, N, 0, NULL, NULL);
            cnn_set_threads(2);
            cnn_gemm_parallel(M, N, P, a, sai, sap, b, N, two, N, 0, NULL, NULL);
            cnn_gemm(M, N, P, a, sai, sap, b, N, serial, N, 0);
            assert_memory_equal(one, two, sizeof(float) * M * N);
            assert_memory_equal(serial, two, sizeof(float) * M * N);
        }
    }
    free(a), free(b), free(one), free(two), free(serial);
    cnn_set_threads(keep);
    assert_int_equal(cnn_set_isa(NULL), 0);
}

/* Blocks are whole kernel tiles; 24 rows where that is enough work, taller where rows are cheap. */
static void test_block_rows(void **state)
{
    (void)state;
    assert_int_equal(cnn_gemm_block_rows(256, 784), 24);
    assert_int_equal(cnn_gemm_block_rows(10, 512), 24);
    const int shapes[][2] = {{1, 1}, {3, 1}, {5, 3}, {64, 16}, {0, 7}, {1 << 20, 1 << 10}};
    int previous = 1 << 30;
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int r = cnn_gemm_block_rows(shapes[t][0], shapes[t][1]);
        assert_int_equal(r % 6, 0);
        assert_true(r >= 24);
        if (shapes[t][0] > 0) {
            assert_true(r <= previous); /* more work per row, never taller blocks */
            previous = r;
        }
    }
    assert_true(cnn_gemm_block_rows(3, 1) > 24 * 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parallel_against_reference),
        cmocka_unit_test(test_parallel_bit_identical),
        cmocka_unit_test(test_block_rows),
        cmocka_unit_test(test_paths_against_generic),
        cmocka_unit_test(test_generic_fma_exact),
        cmocka_unit_test(test_gather_is_strided),
        cmocka_unit_test(test_gather_packed),
        cmocka_unit_test(test_gemm_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
