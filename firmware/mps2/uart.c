#include "uart.h"

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define STATE_TX_FULL 1u
#define STATE_RX_FULL 2u

void uart_init(void)
{
    UART_BAUDDIV = 16u; /* the smallest legal divider; the emulated line has no real rate */
    UART_CTRL = 3u;     /* TX and RX enabled, no interrupts */
}

void uart_put(uint8_t byte)
{
    while (UART_STATE & STATE_TX_FULL)
        ;
    UART_DATA = byte;
}

uint8_t uart_get(void)
{
    while (!(UART_STATE & STATE_RX_FULL))
        ;
    return (uint8_t)UART_DATA;
}
