/* Fixed-point arithmetic of the edgesnn integer path (docs/fixed-point.md).
 *
 * Every rescale rounds to nearest with ties toward +infinity:
 *     round_shift(v, k) = (v >> k) + ((v >> (k - 1)) & 1)
 * the overflow-free form of (v + 2^(k-1)) >> k. Products are int32 x int32 in int64, so
 * they never overflow; results are saturated to int32 before they are stored. This
 * must match edgesnn/compile/fixed.py bit for bit. */
#ifndef ESNN_FIXED_H
#define ESNN_FIXED_H

#include <stdint.h>

/* The rounding rule needs an arithmetic right shift of negative values, which C99
 * leaves to the implementation; gcc, clang and arm-none-eabi-gcc all provide it. */
#if (-1 >> 1) != -1
#error "edgesnn needs an arithmetic right shift of negative integers"
#endif

#define ESNN_DECAY_SHIFT 30      /* decays are Q2.30 */
#define ESNN_TRACE_ONE 65536     /* a spike adds one to a Q15.16 trace */

static inline int32_t esnn_sat32(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : (int32_t)v);
}

static inline int64_t esnn_round_shift(int64_t v, int shift)
{
    return (v >> shift) + ((v >> (shift - 1)) & 1);
}

/* sat32(v * m * 2^-shift), v in int32 range */
static inline int32_t esnn_mul_q(int32_t v, int32_t m, int shift)
{
    return esnn_sat32(esnn_round_shift((int64_t)v * m, shift));
}

static inline int32_t esnn_decay(int32_t v, int32_t q)
{
    return esnn_mul_q(v, q, ESNN_DECAY_SHIFT);
}

#endif
