/* CRC-32/IEEE 802.3, the same value as Python's zlib.crc32. */
#ifndef EDGESNN_CRC32_H
#define EDGESNN_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC over more bytes: crc32_update(0, data, len) == zlib.crc32(data),
 * and crc32_update(crc32_update(0, a, n), b, m) is the CRC of a followed by b. */
uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t len);

#endif
