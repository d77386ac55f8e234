#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_msg[1024];
static _Thread_local int g_code;
static _Thread_local int g_offset = -1;

void cnn_error_set_offset(int offset)
{
    g_offset = offset;
}

int cnn_error_offset(void)
{
    return g_offset;
}

const char *cnn_errmsg(void)
{
    return g_msg;
}

int cnn_errcode(void)
{
    return g_code;
}

void cnn_clear_error(void)
{
    g_msg[0] = '\0';
    g_code = CNN_OK;
}

int cnn_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    g_code = code;
    g_offset = -1;
    return code;
}

int cnn_fail_context(const char *fmt, ...)
{
    char prefix[512], old[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, sizeof old);
    size_t k = strlen(prefix) < sizeof g_msg - 1 ? strlen(prefix) : sizeof g_msg - 1;
    memcpy(g_msg, prefix, k);
    size_t rest = strlen(old) < sizeof g_msg - 1 - k ? strlen(old) : sizeof g_msg - 1 - k;
    memcpy(g_msg + k, old, rest);
    g_msg[k + rest] = '\0';
    return g_code;
}
