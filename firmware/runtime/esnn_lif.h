/* Spiking populations: LIF, current-based LIF, adaptive-threshold LIF (IWTA) and the
 * threshold unit. State is int32 in the neuron's scale; spikes are int8 0/1; the input
 * current arrives as the int64 sum of the population's incoming edges.
 *
 * The reset reads the previous step's spike from the stored membrane (v > threshold of
 * the previous step), as the numpy reference and snnTorch do. */
#ifndef ESNN_LIF_H
#define ESNN_LIF_H

#include <stdint.h>

#include "esnn_fixed.h"

enum { ESNN_RESET_SUBTRACT = 0, ESNN_RESET_ZERO = 1 };

/* One neuron: updates *v, returns the spike. last_thr is the threshold the previous
 * step compared against (it differs from thr only when thresholds adapt). */
static inline int8_t esnn_lif_neuron(int32_t *v, int32_t beta, int32_t last_thr, int32_t thr,
                                     int64_t current, int reset)
{
    int fired = *v > last_thr;
    int64_t decayed = esnn_decay(*v, beta);
    if (reset == ESNN_RESET_ZERO)
        *v = fired ? 0 : esnn_sat32(decayed + current);
    else
        *v = esnn_sat32(decayed + current - (fired ? (int64_t)last_thr : 0));
    return (int8_t)(*v > thr);
}

static inline void esnn_lif(const int32_t *beta, const int32_t *thr, int reset, int32_t *v,
                            const int64_t *current, int8_t *spikes, uint32_t n)
{
    for (uint32_t k = 0; k < n; ++k)
        spikes[k] = esnn_lif_neuron(&v[k], beta[k], thr[k], thr[k], current[k], reset);
}

/* J = sat32(alpha J + I), then the LIF update driven by J */
static inline void esnn_cuba_lif(const int32_t *alpha, const int32_t *beta, const int32_t *thr,
                                 int reset, int32_t *v, int32_t *j, const int64_t *current,
                                 int8_t *spikes, uint32_t n)
{
    for (uint32_t k = 0; k < n; ++k) {
        j[k] = esnn_sat32((int64_t)esnn_decay(j[k], alpha[k]) + current[k]);
        spikes[k] = esnn_lif_neuron(&v[k], beta[k], thr[k], thr[k], j[k], reset);
    }
}

/* Thresholds rise with the population's spike traces (Q15.16):
 *     thr = sat32(thr0 + mul_q(sat32(sum_j W_theta[k][j] trace[j]), tm[k], ts[k]))
 * computed from the traces of the previous step for every neuron before any trace is
 * updated; the reset subtracts the stored threshold of the previous step. */
static inline void esnn_adaptive_lif(const int32_t *alpha, const int32_t *beta,
                                     const int32_t *thr0, const int32_t *trace_decay,
                                     const int8_t *w_theta, const int32_t *tm, const int8_t *ts,
                                     int reset, int32_t *v, int32_t *j, int32_t *trace,
                                     int32_t *thr, const int64_t *current, int8_t *spikes,
                                     uint32_t n)
{
    for (uint32_t k = 0; k < n; ++k) {
        int64_t acc = 0;
        for (uint32_t i = 0; i < n; ++i)
            acc += (int64_t)w_theta[k * n + i] * trace[i];
        int32_t now = esnn_sat32((int64_t)thr0[k] + esnn_mul_q(esnn_sat32(acc), tm[k], ts[k]));
        j[k] = esnn_sat32((int64_t)esnn_decay(j[k], alpha[k]) + current[k]);
        spikes[k] = esnn_lif_neuron(&v[k], beta[k], thr[k], now, j[k], reset);
        thr[k] = now;
    }
    for (uint32_t k = 0; k < n; ++k)
        trace[k] = esnn_sat32((int64_t)esnn_decay(trace[k], trace_decay[k])
                              + (int64_t)spikes[k] * ESNN_TRACE_ONE);
}

static inline void esnn_threshold(const int32_t *thr, const int64_t *x, int8_t *spikes,
                                  uint32_t n)
{
    for (uint32_t k = 0; k < n; ++k)
        spikes[k] = (int8_t)(x[k] > thr[k]);
}

#endif
