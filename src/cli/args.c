/* The command line's shared helpers: error output, checked number parsing, the CPU's name, and the argument
 * loop of the commands that train (train, study). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("cnnlab: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_int(const char *opt, const char *val, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = val ? strtol(val, &end, 10) : 0;
    if (!val || errno || end == val || *end || v < min || v > max) {
        cli_error("%s expects an integer in [%ld, %ld], got '%s'", opt, min, max, val ? val : "");
        return -1;
    }
    *out = v;
    return 0;
}

int cli_double(const char *opt, const char *val, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = val ? strtod(val, &end) : 0;
    if (!val || errno || end == val || *end || !isfinite(v) || v < min || v > max) {
        cli_error("%s expects a number in [%g, %g], got '%s'", opt, min, max, val ? val : "");
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_run_args(const char *cmd, const char *help, int argc, char **argv, cli_run_options *run,
                       long *threads, cli_own_option own, void *ctx)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0, takes = 1;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) return fputs(help, stdout), -1;
        if (!cli_run_option(o, v, run, threads, &takes, &bad) && !own(ctx, o, v, &takes, &bad))
            return cli_error("%s: unknown option '%s' (try: cnnlab %s --help)", cmd, o, cmd), EXIT_USAGE;
        if (takes && !v) return cli_error("%s: %s needs a value", cmd, o), EXIT_USAGE;
        if (bad) return EXIT_USAGE;
        i += takes;
    }
    return 0;
}

/* The CPU's model name from /proc/cpuinfo ("unknown CPU" where there is none). */
void cli_cpu_name(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        const char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) || !colon) continue;
        snprintf(buf, cap, "%s", colon + 1 + (colon[1] == ' '));
        buf[strcspn(buf, "\n")] = '\0';
        break;
    }
    if (f) fclose(f);
}

int cli_precision(const char *opt, const char *val, const char **out)
{
    if (cnn_precision_check(val)) {
        cli_error("%s %s: %s", opt, val ? val : "", cnn_errmsg());
        return -1;
    }
    *out = val;
    return 0;
}

void cli_precision_note(const char *precision)
{
    static int said;
    if (said || !precision || strcmp(precision, "bf16")) return;
    said = 1;
    /* Measured, not looked up by CPU model: the same instruction runs at full rate on some CPUs (AMD Zen 4)
     * and at half the FP32 rate on others (Intel Xeons without AMX). */
    const double fp32 = cnn_fma_peak_gflops(), bf16 = cnn_bf16_peak_gflops();
    if (bf16 >= 1.2 * fp32) return;
    cli_error("note: this CPU computes BF16 products at %.2fx its FP32 multiply-add rate (%.0f against %.0f "
              "GFLOP/s, measured now), so precision bf16 will be slower than fp32 here",
              bf16 / fp32, bf16, fp32);
}
