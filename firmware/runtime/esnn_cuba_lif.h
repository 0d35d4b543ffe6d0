/* Current-based LIF populations: a synaptic current J integrates the input and drives
 * the LIF update of esnn_lif.h; the adaptive-threshold variant (IWTA) raises each
 * neuron's threshold with the population's spike traces. */
#ifndef ESNN_CUBA_LIF_H
#define ESNN_CUBA_LIF_H

#include <stdint.h>

#include "esnn_lif.h"

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

#endif
