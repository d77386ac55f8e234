/* CRC-32C (Castagnoli), the checksum of TFRecord framing: the SSE4.2 crc32 instruction when the CPU has it
 * (checked at run time, so one binary runs on every x86-64), a byte table otherwise. */
#include <pthread.h>
#include <string.h>

#include "report/tfevents.h"

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        table[i] = c;
    }
}

uint32_t cnn_crc32c_table(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&table_once, table_init);
    const unsigned char *p = data;
    crc = ~crc;
    while (len--) crc = table[(crc ^ *p++) & 255] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t c = ~crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

int cnn_crc32c_hardware(void)
{
#if defined(__x86_64__)
    return __builtin_cpu_supports("sse4.2");
#else
    return 0;
#endif
}

uint32_t cnn_crc32c(uint32_t crc, const void *data, size_t len)
{
#if defined(__x86_64__)
    if (cnn_crc32c_hardware()) return crc_sse42(crc, data, len);
#endif
    return cnn_crc32c_table(crc, data, len);
}

uint32_t cnn_crc32c_masked(const void *data, size_t len)
{
    uint32_t c = cnn_crc32c(0, data, len);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}
