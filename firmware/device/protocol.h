/* The device side of the edgesnn serial protocol (docs/serial-protocol.md).
 *
 * Feed every received byte to protocol_feed(); complete frames are checked, executed on
 * the model of model.h and answered through platform_write(). No malloc: all buffers
 * are static, sized by PROTOCOL_MAX_BODY. Not reentrant: call from one context only.
 */
#ifndef EDGESNN_PROTOCOL_H
#define EDGESNN_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define PROTOCOL_VERSION 1u
/* Largest body either side sends or accepts. A smaller device may lower it (-D...);
 * HELLO reports it and hosts size RUN chunks from it. */
#ifndef PROTOCOL_MAX_BODY
#define PROTOCOL_MAX_BODY 4096u
#endif
#define PROTOCOL_HEADER_SIZE 6u /* version u8, type u8, seq u16, body length u16 */
#define PROTOCOL_CRC_SIZE 4u
#define PROTOCOL_MAX_FRAME (PROTOCOL_HEADER_SIZE + PROTOCOL_MAX_BODY + PROTOCOL_CRC_SIZE)

enum protocol_msg_type {
    MSG_HELLO = 0x01,
    MSG_RESET = 0x02,
    MSG_STEP = 0x03,
    MSG_RUN = 0x04,
    MSG_STATS = 0x05,
    MSG_REPLY = 0x80, /* a reply's type is its request's type | MSG_REPLY */
    MSG_ERROR = 0xFF
};

enum protocol_error_code {
    ERR_BAD_FRAME = 1,   /* COBS block cut short, or shorter than header + CRC */
    ERR_BAD_CRC = 2,
    ERR_TOO_LARGE = 3,   /* over PROTOCOL_MAX_FRAME, or a RUN whose reply would be */
    ERR_BAD_VERSION = 4,
    ERR_BAD_LENGTH = 5,  /* length field != bytes received, or wrong body size for the type */
    ERR_UNKNOWN_TYPE = 6, /* not a request type */
    ERR_OUT_OF_ORDER = 7  /* a STEP or RUN whose seq is not the previous answered request's + 1 */
};

/* Reset the model, the counters and the frame decoder. Call once before feeding. */
void protocol_init(void);

/* One received byte. Replies (if any) are written before it returns. */
void protocol_feed(uint8_t byte);

/* Provided by the platform. */
void platform_write(const uint8_t *data, size_t len); /* blocking; all bytes */
uint32_t device_cycles(void); /* free-running counter; may wrap; STATS sums differences */

#endif
