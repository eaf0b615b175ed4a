/* Elementwise kernels of the SIREN fast step and renderer (kancoin/kernels.py).
 *
 * torch.sin and torch.cos are each as slow as the 44x44 matrix product next to them; one
 * shared Cody-Waite reduction and two short polynomials give both at about a tenth of the
 * cost, within about one float32 ulp of the correctly rounded values. Values beyond
 * |x| > 4096 (and NaN/inf) take libm's sinf/cosf so every input stays exact to float.
 * The bias, w0 and the backward's product and bias sum ride along in the same passes.
 *
 * Plain C with no Python or torch headers: loaded with ctypes, built by `make native`.
 * OpenMP (when compiled with it) shares torch's runtime: torch ships libgomp.so.1 and the
 * loader reuses a library of that soname once torch is imported.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define KC_BLOCK 4096
#define KC_FAST_LIMIT 4096.0f

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define KC_CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))
#else
#define KC_CLONES
#endif

static inline __attribute__((always_inline)) void kc_sincos_one(float x, float *s_out, float *c_out) {
    const float two_over_pi = 0.636619772367581343f;
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float j = (x * two_over_pi + round_magic) - round_magic;
    int q = (int)j;
    /* x - j * pi/2 with pi/2 split in three parts (Cody-Waite) */
    float r = fmaf(-j, 1.5703125f, x);
    r = fmaf(-j, 4.837512969970703125e-4f, r);
    r = fmaf(-j, 7.54978995489188216e-8f, r);
    float r2 = r * r;
    /* minimax polynomials on [-pi/4, pi/4] (Cephes sinf/cosf coefficients) */
    float s = r + r * r2 * (-1.6666654611e-1f + r2 * (8.3321608736e-3f + r2 * -1.9515295891e-4f));
    float c = 1.0f - 0.5f * r2 +
              r2 * r2 *
                  (4.166664568298827e-2f + r2 * (-1.388731625493765e-3f + r2 * 2.443315711809948e-5f));
    int odd = q & 1;
    float sv = odd ? c : s;
    float cv = odd ? s : c;
    *s_out = (q & 2) ? -sv : sv;
    *c_out = ((q + 1) & 2) ? -cv : cv;
}

/* sin_out = sin(x) and, unless cos_out is NULL, cos_out = cos(x) over [lo, hi). cos_out may
 * be x itself, sin_out too when cos_out is NULL: each element is read before it is written. */
static inline __attribute__((always_inline)) void kc_block(const float *x, float *sin_out,
                                                           float *cos_out, int64_t lo, int64_t hi) {
    int outside = 0;
#pragma omp simd reduction(| : outside)
    for (int64_t i = lo; i < hi; i++) outside |= !(fabsf(x[i]) <= KC_FAST_LIMIT);
    if (outside) {
        for (int64_t i = lo; i < hi; i++) {
            float v = x[i];
            sin_out[i] = sinf(v);
            if (cos_out) cos_out[i] = cosf(v);
        }
        return;
    }
    if (cos_out) {
#pragma omp simd
        for (int64_t i = lo; i < hi; i++) {
            float s, c;
            kc_sincos_one(x[i], &s, &c);
            sin_out[i] = s;
            cos_out[i] = c;
        }
    } else {
#pragma omp simd
        for (int64_t i = lo; i < hi; i++) {
            float s, c;
            kc_sincos_one(x[i], &s, &c);
            sin_out[i] = s;
        }
    }
}

/* The sine layer after its matrix product z = x W^T (rows x cols, row-major, contiguous):
 * t = w0 (z + bias), sin_out = sin(t), z = cos(t). Same rounding as w0 * addmm(bias, ...).
 * Rows are taken a block at a time: bias and w0 row by row, then sin and cos over the block
 * as one flat array (a row of 44 would leave a scalar tail of 12 to the slow scalar path). */
KC_CLONES
void kc_sine_layer(float *z_cos, float *restrict sin_out, const float *restrict bias,
                   float w0, int64_t rows, int64_t cols, int threads) {
    int64_t block_rows = KC_BLOCK / cols > 0 ? KC_BLOCK / cols : 1;
    int64_t blocks = (rows + block_rows - 1) / block_rows;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && blocks > 1)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t first = b * block_rows;
        int64_t last = first + block_rows < rows ? first + block_rows : rows;
        for (int64_t i = first; i < last; i++) {
            float *row = z_cos + i * cols;
#pragma omp simd
            for (int64_t j = 0; j < cols; j++) row[j] = w0 * (row[j] + bias[j]);
        }
        kc_block(z_cos, sin_out, z_cos, first * cols, last * cols);
    }
}

/* g = g * upstream (g holds the cosines), and column_sums = the sum of g over the rows
 * (summed in blocks of rows, then over blocks: the error grows with blocks, not rows). */
#define KC_SUM_BLOCK 64
KC_CLONES
void kc_mul_column_sums(float *restrict g, const float *restrict upstream, float *restrict column_sums,
                        int64_t rows, int64_t cols) {
    float block_sums[cols];
    for (int64_t j = 0; j < cols; j++) column_sums[j] = 0.0f;
    for (int64_t lo = 0; lo < rows; lo += KC_SUM_BLOCK) {
        int64_t hi = lo + KC_SUM_BLOCK < rows ? lo + KC_SUM_BLOCK : rows;
        for (int64_t j = 0; j < cols; j++) block_sums[j] = 0.0f;
        for (int64_t i = lo; i < hi; i++) {
            float *row = g + i * cols;
            const float *up = upstream + i * cols;
#pragma omp simd
            for (int64_t j = 0; j < cols; j++) {
                float v = row[j] * up[j];
                row[j] = v;
                block_sums[j] += v;
            }
        }
        for (int64_t j = 0; j < cols; j++) column_sums[j] += block_sums[j];
    }
}

/* out[i] = sin(x[i]) (decoding needs no cosine); x and out may be the same array. */
KC_CLONES
void kc_sin(const float *x, float *out, int64_t n, int threads) {
    int64_t blocks = (n + KC_BLOCK - 1) / KC_BLOCK;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && blocks > 1)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t lo = b * KC_BLOCK;
        kc_block(x, out, NULL, lo, lo + KC_BLOCK < n ? lo + KC_BLOCK : n);
    }
}
