/* Frame decoding, checks and message handlers; mirrors edgesnn/serial/protocol.py. */
#include "protocol.h"

#include "crc32.h"
#include "model.h"

#if PROTOCOL_MAX_BODY > 4096u || PROTOCOL_MAX_BODY < 64u
#error "PROTOCOL_MAX_BODY must be 64..4096: hosts decode bodies of at most 4096 bytes"
#endif

/* C99 has no _Static_assert: an array of negative size stops the build instead. */
#define STATIC_CHECK(name, cond) typedef char static_check_##name[(cond) ? 1 : -1]
STATIC_CHECK(step_request_fits, 2u * MODEL_INPUTS <= PROTOCOL_MAX_BODY);
STATIC_CHECK(step_reply_fits, 4u * MODEL_OUTPUTS <= PROTOCOL_MAX_BODY);

#define HELLO_FIXED 12u /* HELLO reply body before the name */
#define NAME_ROOM (PROTOCOL_MAX_BODY - HELLO_FIXED < 255u ? PROTOCOL_MAX_BODY - HELLO_FIXED : 255u)
#define NAME_LEN (sizeof(MODEL_NAME) - 1u < NAME_ROOM ? sizeof(MODEL_NAME) - 1u : NAME_ROOM)

static model_state_t model;
static int16_t step_in[MODEL_INPUTS];
static int32_t step_out[MODEL_OUTPUTS];
static uint32_t steps;   /* since RESET or boot */
static uint64_t cycles;  /* in model_step, since RESET or boot */
static uint32_t errors;  /* ERROR replies since boot */
/* STEP and RUN change the model state: one runs only if its seq follows the previous
 * answered request's, so a lost request is reported instead of silently shifting the
 * host's and the device's step counts apart, and a resent one never runs twice.
 * HELLO, RESET and STATS are always answered and set the sequence. */
static uint16_t next_seq;
static int synced;

/* Receive side: the COBS decoder runs byte by byte into rx. rx_len counts every decoded
 * byte of the frame, saturating one past the buffer so "too large" stays visible. */
static uint8_t rx[PROTOCOL_MAX_FRAME];
static uint32_t rx_len;
static uint32_t rx_block; /* data bytes still due in the current COBS block */
static int rx_zero;       /* the current block stands for a following zero */

/* Send side: the reply payload (header, body, CRC) is built here, then COBS-encoded. */
static uint8_t tx[PROTOCOL_MAX_FRAME];
static uint8_t *const tx_body = tx + PROTOCOL_HEADER_SIZE;

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)get_u16(p) | ((uint32_t)get_u16(p + 2) << 16);
}

static int16_t get_i16(const uint8_t *p)
{
    uint16_t u = get_u16(p);
    /* two's complement by arithmetic: a cast of u > INT16_MAX is implementation-defined */
    return u < 0x8000u ? (int16_t)u : (int16_t)((int32_t)u - 65536);
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    put_u16(p, (uint16_t)v);
    put_u16(p + 2, (uint16_t)(v >> 16));
}

static void write_cobs(const uint8_t *p, uint32_t n)
{
    static const uint8_t delimiter = 0;
    uint32_t i = 0;
    for (;;) {
        uint32_t run = 0;
        uint8_t code;
        while (i + run < n && run < 254u && p[i + run] != 0)
            run++;
        code = (uint8_t)(run + 1u);
        platform_write(&code, 1);
        if (run > 0)
            platform_write(p + i, run);
        i += run;
        if (i == n)
            break;
        if (run < 254u)
            i++; /* the zero this block's code stands for */
    }
    platform_write(&delimiter, 1);
}

static void send(uint8_t type, uint16_t seq, uint32_t body_len)
{
    uint32_t n = PROTOCOL_HEADER_SIZE + body_len;
    tx[0] = (uint8_t)PROTOCOL_VERSION;
    tx[1] = type;
    put_u16(tx + 2, seq);
    put_u16(tx + 4, (uint16_t)body_len);
    put_u32(tx + n, crc32_update(0, tx, n));
    write_cobs(tx, n + PROTOCOL_CRC_SIZE);
}

static void send_error(uint8_t code, uint8_t type, uint16_t seq)
{
    errors++;
    tx_body[0] = code;
    tx_body[1] = type; /* as received, so the host can tell which request failed */
    send(MSG_ERROR, seq, 2);
}

static void timed_step(const uint8_t *in, uint8_t *out)
{
    uint32_t i, t0;
    for (i = 0; i < MODEL_INPUTS; i++)
        step_in[i] = get_i16(in + 2u * i);
    t0 = device_cycles();
    model_step(&model, step_in, step_out);
    cycles += (uint32_t)(device_cycles() - t0); /* unsigned: right across one wrap */
    steps++;
    for (i = 0; i < MODEL_OUTPUTS; i++)
        put_u32(out + 4u * i, (uint32_t)step_out[i]);
}

/* A STEP or RUN runs only when its seq is the one expected; otherwise OUT_OF_ORDER. */
static int in_sequence(uint8_t type, uint16_t seq)
{
    if (synced && seq == next_seq)
        return 1;
    send_error(ERR_OUT_OF_ORDER, type, seq);
    return 0;
}

/* Answer a request that ran: it sets the seq the next STEP or RUN must carry. */
static void answer(uint8_t type, uint16_t seq, uint32_t body_len)
{
    next_seq = (uint16_t)(seq + 1u);
    synced = 1;
    send((uint8_t)(type | MSG_REPLY), seq, body_len);
}

static void handle(uint8_t type, uint16_t seq, const uint8_t *body, uint32_t len)
{
    uint32_t k, t;
    switch (type) {
    case MSG_HELLO:
        if (len != 0)
            break;
        tx_body[0] = (uint8_t)PROTOCOL_VERSION;
        put_u32(tx_body + 1, (uint32_t)MODEL_ID);
        put_u16(tx_body + 5, (uint16_t)MODEL_INPUTS);
        put_u16(tx_body + 7, (uint16_t)MODEL_OUTPUTS);
        put_u16(tx_body + 9, (uint16_t)PROTOCOL_MAX_BODY);
        tx_body[11] = (uint8_t)NAME_LEN;
        for (t = 0; t < NAME_LEN; t++)
            tx_body[HELLO_FIXED + t] = (uint8_t)MODEL_NAME[t];
        answer(type, seq, HELLO_FIXED + NAME_LEN);
        return;
    case MSG_RESET:
        if (len != 0)
            break;
        model_reset(&model);
        steps = 0;
        cycles = 0;
        answer(type, seq, 0);
        return;
    case MSG_STEP:
        if (len != 2u * MODEL_INPUTS)
            break;
        if (!in_sequence(type, seq))
            return;
        timed_step(body, tx_body);
        answer(type, seq, 4u * MODEL_OUTPUTS);
        return;
    case MSG_RUN:
        if (len < 2)
            break;
        k = get_u16(body);
        if (len != 2u + 2u * k * MODEL_INPUTS)
            break;
        if (4u * k * MODEL_OUTPUTS > PROTOCOL_MAX_BODY) {
            send_error(ERR_TOO_LARGE, type, seq);
            return;
        }
        if (!in_sequence(type, seq))
            return;
        for (t = 0; t < k; t++)
            timed_step(body + 2u + 2u * t * MODEL_INPUTS, tx_body + 4u * t * MODEL_OUTPUTS);
        answer(type, seq, 4u * k * MODEL_OUTPUTS);
        return;
    case MSG_STATS:
        if (len != 0)
            break;
        put_u32(tx_body, steps);
        put_u32(tx_body + 4, (uint32_t)cycles);
        put_u32(tx_body + 8, (uint32_t)(cycles >> 32));
        put_u32(tx_body + 12, errors);
        answer(type, seq, 16);
        return;
    default:
        send_error(ERR_UNKNOWN_TYPE, type, seq);
        return;
    }
    send_error(ERR_BAD_LENGTH, type, seq); /* a known request with a body of the wrong size */
}

/* The checks run in this order on the host too (protocol.py, _check_payload). */
static void frame_end(void)
{
    uint8_t type;
    uint16_t seq;
    uint32_t body_len;
    if (rx_len < PROTOCOL_HEADER_SIZE)
        return; /* empty frame or line noise: no header, so no request to answer */
    type = rx[1];
    seq = get_u16(rx + 2);
    body_len = rx_len - PROTOCOL_HEADER_SIZE - PROTOCOL_CRC_SIZE; /* read after the size checks */
    if (rx_len > PROTOCOL_MAX_FRAME)
        send_error(ERR_TOO_LARGE, type, seq);
    else if (rx_block != 0 || rx_len < PROTOCOL_HEADER_SIZE + PROTOCOL_CRC_SIZE)
        send_error(ERR_BAD_FRAME, type, seq);
    else if (crc32_update(0, rx, PROTOCOL_HEADER_SIZE + body_len) !=
             get_u32(rx + PROTOCOL_HEADER_SIZE + body_len))
        send_error(ERR_BAD_CRC, type, seq);
    else if (rx[0] != PROTOCOL_VERSION)
        send_error(ERR_BAD_VERSION, type, seq);
    else if (get_u16(rx + 4) != body_len)
        send_error(ERR_BAD_LENGTH, type, seq);
    else
        handle(type, seq, rx + PROTOCOL_HEADER_SIZE, body_len);
}

static void rx_put(uint8_t byte)
{
    if (rx_len < PROTOCOL_MAX_FRAME)
        rx[rx_len] = byte;
    if (rx_len <= PROTOCOL_MAX_FRAME)
        rx_len++;
}

static void rx_clear(void)
{
    rx_len = 0;
    rx_block = 0;
    rx_zero = 0;
}

void protocol_init(void)
{
    synced = 0;
    model_reset(&model);
    steps = 0;
    cycles = 0;
    errors = 0;
    rx_clear();
}

void protocol_feed(uint8_t byte)
{
    if (byte == 0) { /* delimiter: whatever came before is one frame */
        frame_end();
        rx_clear();
    } else if (rx_block == 0) { /* a code byte opens a block */
        if (rx_zero)
            rx_put(0); /* only now is the previous block known not to be the last */
        rx_block = byte - 1u;
        rx_zero = byte != 0xFFu;
    } else {
        rx_put(byte);
        rx_block--;
    }
}
