/* Spike encoder: every input channel c drives its own population of P LIF neurons
 * through a per-neuron weight and bias (outputs channel-major, index c*P + k):
 *     I[c*P+k] = mul_q(sat32(w[c*P+k] x[c] + b[c*P+k]), m[c*P+k], shift[c*P+k]) */
#ifndef ESNN_ENCODER_H
#define ESNN_ENCODER_H

#include <stdint.h>

#include "esnn_lif.h"

static inline void esnn_encoder(const int8_t *w, const int32_t *bias, const int32_t *m,
                                const int8_t *shift, const int32_t *beta, const int32_t *thr,
                                int reset, int32_t *v, const int64_t *x, int8_t *spikes,
                                uint32_t channels, uint32_t population)
{
    for (uint32_t c = 0; c < channels; ++c)
        for (uint32_t p = 0; p < population; ++p) {
            uint32_t k = c * population + p;
            int32_t current = esnn_mul_q(esnn_sat32((int64_t)w[k] * x[c] + bias[k]), m[k],
                                         shift[k]);
            spikes[k] = esnn_lif_neuron(&v[k], beta[k], thr[k], thr[k], current, reset);
        }
}

#endif
