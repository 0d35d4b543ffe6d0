/* Leaky integrator readout: v = sat32(beta v + I), output v (int32). */
#ifndef ESNN_LI_H
#define ESNN_LI_H

#include <stdint.h>

#include "esnn_fixed.h"

static inline void esnn_li(const int32_t *beta, int32_t *v, const int64_t *current, int32_t *y,
                           uint32_t n)
{
    for (uint32_t k = 0; k < n; ++k)
        y[k] = v[k] = esnn_sat32((int64_t)esnn_decay(v[k], beta[k]) + current[k]);
}

#endif
