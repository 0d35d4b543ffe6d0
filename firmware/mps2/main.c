/* The model on an emulated Cortex-M4 (QEMU mps2-an386): serve the serial protocol on
 * UART0. device_cycles counts SysTick ticks of the core clock; under QEMU they follow
 * emulated time, so they show that STATS works rather than real cycle counts. */
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"
#include "uart.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_RELOAD 0x00FFFFFFu

static volatile uint32_t systick_wraps;

void systick_handler(void);
void systick_handler(void)
{
    ++systick_wraps;
}

uint32_t device_cycles(void)
{
    return (systick_wraps << 24) | (SYST_RELOAD - SYST_CVR);
}

void platform_write(const uint8_t *data, size_t len)
{
    for (size_t k = 0; k < len; ++k)
        uart_put(data[k]);
}

int main(void)
{
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0u;
    SYST_CSR = 7u; /* core clock, wrap interrupt, enabled */
    uart_init();
    protocol_init();
    for (;;)
        protocol_feed(uart_get());
}
