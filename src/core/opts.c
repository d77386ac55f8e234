#include "core/opts.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

/* cnn_fail that also records where in the options text the problem is. */
static int fail_at(int pos, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_at(int pos, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cnn_fail(CNN_ERR_INVALID, "%s", msg);
    cnn_error_set_offset(pos);
    return CNN_ERR_INVALID;
}

static int is_sep(char c)
{
    return c == ',' || isspace((unsigned char)c);
}

/* Copies one value: a plain word, a quoted string, or text with balanced brackets such as (3,3) or
 * l1_l2(l1=0.01, l2=0.01). Returns the characters consumed, or -1 when unterminated or too long. */
static int scan_value(const char *s, char *out, size_t cap)
{
    size_t i = 0, n = 0;
    int depth = 0;
    char quote = 0;
    if (s[0] == '"' || s[0] == '\'') quote = s[i++];
    for (; s[i]; i++) {
        if (quote && s[i] == quote) break;
        if (!quote && depth == 0 && is_sep(s[i])) break;
        if (!quote && (s[i] == '(' || s[i] == '[')) depth++;
        if (!quote && (s[i] == ')' || s[i] == ']') && --depth < 0) return -1;
        if (n + 1 >= cap) return -1;
        out[n++] = s[i];
    }
    if (depth != 0 || (quote && s[i] != quote) || n == 0) return -1;
    out[n] = '\0';
    return (int)i + (quote ? 1 : 0);
}

int cnn_opts_parse(cnn_opts *o, const char *text, const char *context)
{
    memset(o, 0, sizeof *o);
    snprintf(o->context, sizeof o->context, "%s", context ? context : "options");
    text = text ? text : "";
    const char *s = text;
    while (*s) {
        while (*s && is_sep(*s)) s++;
        if (!*s) break;
        size_t k = 0;
        while (isalnum((unsigned char)s[k]) || s[k] == '_') k++;
        if (k == 0 || s[k] != '=')
            return fail_at((int)(s - text), "%s: expected key=value at \"%.20s\"", o->context, s);
        if (o->n == CNN_OPTS_MAX) return fail_at((int)(s - text), "%s: too many options", o->context);
        cnn_opt *it = &o->items[o->n];
        if (k >= sizeof it->key) return fail_at((int)(s - text), "%s: option name too long", o->context);
        it->pos = (int)(s - text);
        memcpy(it->key, s, k);
        for (int j = 0; j < o->n; j++)
            if (!strcmp(o->items[j].key, it->key))
                return fail_at(it->pos, "%s: option '%s' given twice", o->context, it->key);
        int used = scan_value(s + k + 1, it->val, sizeof it->val);
        if (used <= 0) return fail_at(it->pos, "%s: bad or unterminated value for '%s'", o->context, it->key);
        s += k + 1 + used;
        o->n++;
    }
    return CNN_OK;
}

static cnn_opt *lookup(cnn_opts *o, const char *key)
{
    if (o->nknown < CNN_OPTS_MAX) o->known[o->nknown++] = key;
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->items[i].key, key)) {
            o->items[i].used = 1;
            return &o->items[i];
        }
    return NULL;
}

static int parse_long(const char *s, long *v)
{
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    return errno == 0 && end != s && *end == '\0';
}

int cnn_opts_int(cnn_opts *o, const char *key, int def, int min, int max, int *out)
{
    cnn_opt *it = lookup(o, key);
    long v = def;
    if (it && !parse_long(it->val, &v))
        return fail_at(it ? it->pos : -1, "%s: %s=%s is not an integer", o->context, key, it->val);
    if (!it && (v < min || v > max)) return fail_at(-1, "%s: missing required option '%s'", o->context, key);
    if (v < min || v > max)
        return fail_at(it ? it->pos : -1, "%s: %s=%ld is out of range [%d, %d]", o->context, key, v, min,
                       max);
    *out = (int)v;
    return CNN_OK;
}

int cnn_opts_double(cnn_opts *o, const char *key, double def, double min, double max, double *out)
{
    cnn_opt *it = lookup(o, key);
    double v = def;
    if (it) {
        char *end;
        errno = 0;
        v = strtod(it->val, &end);
        if (errno || end == it->val || *end || !isfinite(v))
            return fail_at(it ? it->pos : -1, "%s: %s=%s is not a number", o->context, key, it->val);
    }
    if (v < min || v > max)
        return fail_at(it ? it->pos : -1, "%s: %s=%g is out of range [%g, %g]", o->context, key, v, min, max);
    *out = v;
    return CNN_OK;
}

int cnn_opts_bool(cnn_opts *o, const char *key, int def, int *out)
{
    static const char *const names[] = {"false", "true", "0", "1", "no", "yes"};
    int idx;
    int rc = cnn_opts_enum(o, key, names, 6, def ? 1 : 0, &idx);
    if (rc == CNN_OK) *out = idx & 1;
    return rc;
}

int cnn_opts_pair(cnn_opts *o, const char *key, int def, int min, int max, int out[2])
{
    cnn_opt *it = lookup(o, key);
    long a = def, b = def;
    if (it) {
        char buf[80];
        snprintf(buf, sizeof buf, "%s", it->val);
        char *p = buf;
        if (*p == '(' || *p == '[') p++;
        char *end;
        errno = 0;
        a = strtol(p, &end, 10);
        int ok = end != p && !errno;
        b = a;
        while (*end == ' ') end++;
        if (ok && *end == ',') {
            p = end + 1;
            b = strtol(p, &end, 10);
            ok = end != p && !errno;
            while (*end == ' ') end++;
        }
        if (ok && (*end == ')' || *end == ']')) end++;
        if (!ok || *end)
            return fail_at(it ? it->pos : -1, "%s: %s=%s is not an integer or a pair like (3,3)", o->context,
                           key, it->val);
    }
    if (a < min || a > max || b < min || b > max)
        return fail_at(it ? it->pos : -1, "%s: %s=(%ld,%ld) is out of range [%d, %d]", o->context, key, a, b,
                       min, max);
    out[0] = (int)a;
    out[1] = (int)b;
    return CNN_OK;
}

int cnn_opts_enum(cnn_opts *o, const char *key, const char *const *names, int n, int def, int *out)
{
    cnn_opt *it = lookup(o, key);
    if (!it) {
        *out = def;
        return CNN_OK;
    }
    for (int i = 0; i < n; i++)
        if (!strcasecmp(it->val, names[i])) {
            *out = i;
            return CNN_OK;
        }
    char list[256] = "";
    for (int i = 0; i < n; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    return fail_at(it ? it->pos : -1, "%s: %s=%s is not one of: %s", o->context, key, it->val, list);
}

int cnn_opts_str(cnn_opts *o, const char *key, const char *def, char *out, size_t cap)
{
    cnn_opt *it = lookup(o, key);
    const char *v = it ? it->val : def;
    if (strlen(v) >= cap)
        return fail_at(it ? it->pos : -1, "%s: %s is longer than %zu characters", o->context, key, cap - 1);
    memcpy(out, v, strlen(v) + 1);
    return CNN_OK;
}

int cnn_opts_fail(const cnn_opts *o, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int pos = -1;
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->items[i].key, key)) pos = o->items[i].pos;
    return fail_at(pos, "%s", msg);
}

void cnn_first_error_keep(cnn_first_error *e, int rc)
{
    if (rc && !e->rc) {
        e->rc = rc;
        e->offset = cnn_error_offset();
        snprintf(e->msg, sizeof e->msg, "%s", cnn_errmsg());
    }
}

int cnn_first_error_result(const cnn_first_error *e)
{
    if (!e->rc) return CNN_OK;
    cnn_fail(e->rc, "%s", e->msg);
    cnn_error_set_offset(e->offset);
    return e->rc;
}

int cnn_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 64;
    int row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int sub = diag + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            int best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            diag = up;
        }
    }
    return row[lb];
}

/* The key asked for that is nearest to an option nobody asked for, or NULL. */
static const char *suggestion(const cnn_opts *o, const cnn_opt *it)
{
    const char *best = NULL;
    int bd = 4;
    for (int j = 0; j < o->nknown; j++) {
        int d = cnn_edit_distance(it->key, o->known[j]);
        if (d < bd) bd = d, best = o->known[j];
    }
    return best;
}

int cnn_opts_has_misspelling(const cnn_opts *o)
{
    for (int i = 0; i < o->n; i++)
        if (!o->items[i].used && suggestion(o, &o->items[i])) return 1;
    return 0;
}

int cnn_opts_finish(cnn_opts *o)
{
    for (int i = 0; i < o->n; i++) {
        if (o->items[i].used) continue;
        const char *best = suggestion(o, &o->items[i]);
        if (best)
            return fail_at(o->items[i].pos, "%s: unknown option '%s' (did you mean '%s'?)", o->context,
                           o->items[i].key, best);
        return fail_at(o->items[i].pos, "%s: unknown option '%s'", o->context, o->items[i].key);
    }
    return CNN_OK;
}
