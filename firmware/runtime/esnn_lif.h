/* Spiking populations: the LIF neuron update, LIF populations and the threshold unit
 * (current-based variants: esnn_cuba_lif.h). State is int32 in the neuron's scale; spikes are int8 0/1; the input
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

static inline void esnn_threshold(const int32_t *thr, const int64_t *x, int8_t *spikes,
                                  uint32_t n)
{
    for (uint32_t k = 0; k < n; ++k)
        spikes[k] = (int8_t)(x[k] > thr[k]);
}

#endif
