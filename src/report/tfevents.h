/* TensorBoard event files: TFRecord framing (length, masked CRC-32C of the length, data, masked CRC-32C of
 * the data) around serialized Event messages, kept in memory and written atomically on each flush. */
#ifndef CNN_REPORT_TFEVENTS_H
#define CNN_REPORT_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "cnnlab.h"

/* The table CRC (for tests against the instruction) and whether the instruction is used. */
uint32_t cnn_crc32c_table(uint32_t crc, const void *data, size_t len);
int cnn_crc32c_hardware(void);
/* TFRecord's masked CRC: rotate right by 15, add 0xa282ead8. */
uint32_t cnn_crc32c_masked(const void *data, size_t len);

typedef struct cnn_tb_file {
    char path[4200];
    unsigned char *buf;
    size_t len, cap;
} cnn_tb_file;

/* Starts an event file in dir (created if missing) named as TensorFlow names them
 * (events.out.tfevents.<seconds>.<host>.<pid>.<n>.v2), with the file_version record first. */
int cnn_tb_open(cnn_tb_file *f, const char *dir, int n);
/* Appends one framed record. */
int cnn_tb_append(cnn_tb_file *f, const void *data, size_t len);
/* Writes everything so far to the file, atomically. */
int cnn_tb_flush(const cnn_tb_file *f);
void cnn_tb_close(cnn_tb_file *f);

/* Creates a folder and its missing parents. */
int cnn_mkdirs(const char *dir);

#endif
