/* Steps the model on pseudo-random inputs, for instruction counts under
 * valgrind --tool=callgrind --toggle-collect=model_step: bench STEPS */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

int main(int argc, char **argv)
{
    static model_state_t state;
    static int16_t in[MODEL_INPUTS];
    static int32_t out[MODEL_OUTPUTS];
    long steps = argc > 1 ? atol(argv[1]) : 1000;
    uint32_t x = 2463534242u; /* xorshift32: the same inputs on every run */
    int64_t checksum = 0;
    model_reset(&state);
    for (long t = 0; t < steps; ++t) {
        for (uint32_t k = 0; k < MODEL_INPUTS; ++k) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            in[k] = (int16_t)(x >> 20) - 2048; /* ±2048: inputs of calibrated magnitude */
        }
        model_step(&state, in, out);
        for (uint32_t k = 0; k < MODEL_OUTPUTS; ++k)
            checksum += out[k];
    }
    printf("%lld\n", (long long)checksum); /* keeps the steps from being optimised away */
    return 0;
}
