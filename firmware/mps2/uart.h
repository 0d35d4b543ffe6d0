/* CMSDK APB UART0 of the MPS2 (polled). */
#ifndef UART_H
#define UART_H

#include <stdint.h>

void uart_init(void);
void uart_put(uint8_t byte);
uint8_t uart_get(void); /* blocks until a byte arrives */

#endif
