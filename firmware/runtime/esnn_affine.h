/* Affine connections: int8 weights (per-output-channel scale), int32 bias, int64
 * accumulation, then saturate to int32 and rescale per output channel:
 *     y[o] = mul_q(sat32(bias[o] + sum_i W[o][i] x[i]), m[o], shift[o])
 * The accumulator is int64 (one SMLAL per term on a Cortex-M4) so the result equals the
 * numpy reference for any input, not only when an int32 sum cannot overflow. */
#ifndef ESNN_AFFINE_H
#define ESNN_AFFINE_H

#include <stddef.h>
#include <stdint.h>

#include "esnn_fixed.h"

/* Dense form, weights row-major [out][in]; one function per input element type
 * (graph input int16, values int32, summed inputs int64). bias may be NULL. */
#define ESNN_DEFINE_AFFINE(suffix, xtype)                                                  \
    static inline void esnn_affine_##suffix(const int8_t *w, const int32_t *bias,           \
                                            const int32_t *m, const int8_t *shift,          \
                                            const xtype *x, int32_t *y, uint32_t n_in,      \
                                            uint32_t n_out)                                 \
    {                                                                                       \
        for (uint32_t o = 0; o < n_out; ++o) {                                              \
            const int8_t *row = w + (size_t)o * n_in;                                       \
            int64_t acc = bias ? bias[o] : 0;                                               \
            for (uint32_t i = 0; i < n_in; ++i)                                             \
                acc += (int64_t)row[i] * x[i];                                              \
            y[o] = esnn_mul_q(esnn_sat32(acc), m[o], shift[o]);                             \
        }                                                                                   \
    }

ESNN_DEFINE_AFFINE(i16, int16_t)
ESNN_DEFINE_AFFINE(i32, int32_t)
ESNN_DEFINE_AFFINE(i64, int64_t)

/* Event-driven form for spike inputs (0/1): weights transposed [in][out], and only the
 * columns of inputs that fired are added. acc is scratch of n_out entries. */
static inline void esnn_affine_spikes(const int8_t *wt, const int32_t *bias, const int32_t *m,
                                      const int8_t *shift, const int8_t *spikes, int64_t *acc,
                                      int32_t *y, uint32_t n_in, uint32_t n_out)
{
    for (uint32_t o = 0; o < n_out; ++o)
        acc[o] = bias ? bias[o] : 0;
    for (uint32_t i = 0; i < n_in; ++i) {
        if (!spikes[i])
            continue;
        const int8_t *col = wt + (size_t)i * n_out;
        for (uint32_t o = 0; o < n_out; ++o)
            acc[o] += col[o];
    }
    for (uint32_t o = 0; o < n_out; ++o)
        y[o] = esnn_mul_q(esnn_sat32(acc[o]), m[o], shift[o]);
}

#endif
