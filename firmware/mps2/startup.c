/* Cortex-M4 start-up for the MPS2 AN386: vector table, .data/.bss set-up, main. */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

void reset_handler(void);
void fault_handler(void);
void systick_handler(void);

void reset_handler(void)
{
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;)
        *dst++ = *src++;
    for (uint32_t *dst = &_sbss; dst < &_ebss;)
        *dst++ = 0;
    main();
    for (;;)
        ;
}

/* A fault stops here; the host sees the device stop answering and times out. */
void fault_handler(void)
{
    for (;;)
        ;
}

/* The initial stack pointer, then the handlers: a struct, because ISO C has no
 * conversion between an object pointer and a function pointer. */
struct vector_table {
    uint32_t *initial_sp;
    void (*handlers[15])(void);
};

__attribute__((section(".vectors"), used)) static const struct vector_table vectors = {
    &_estack,
    {reset_handler, fault_handler, fault_handler, fault_handler, fault_handler, fault_handler,
     0, 0, 0, 0, fault_handler, fault_handler, 0, fault_handler, systick_handler},
};
