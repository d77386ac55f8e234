#include "core/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* ---------------------------------------------------------------- writer */

void cnn_jw_init(cnn_json_writer *w, cnn_strbuf *b)
{
    memset(w, 0, sizeof *w);
    w->b = b;
}

/* Separator, indentation and key before a value at the current depth. */
static void jw_key(cnn_json_writer *w, const char *key)
{
    if (w->depth == 0) return;
    int d = w->depth;
    if (w->inline_[d])
        cnn_strbuf_printf(w->b, "%s", w->count[d] ? ", " : "");
    else
        cnn_strbuf_printf(w->b, "%s\n%*s", w->count[d] ? "," : "", 2 * d, "");
    w->count[d]++;
    if (key) {
        cnn_strbuf_printf(w->b, "\"");
        for (const char *s = key; *s; s++) cnn_strbuf_printf(w->b, "%c", *s);
        cnn_strbuf_printf(w->b, "\": ");
    }
}

static void jw_open(cnn_json_writer *w, const char *key, char bracket, int inline_)
{
    jw_key(w, key);
    cnn_strbuf_printf(w->b, "%c", bracket);
    if (w->depth < 31) w->depth++;
    w->count[w->depth] = 0;
    w->inline_[w->depth] = inline_;
}

void cnn_jw_object(cnn_json_writer *w, const char *key)
{
    jw_open(w, key, '{', 0);
}

void cnn_jw_array(cnn_json_writer *w, const char *key)
{
    jw_open(w, key, '[', 1);
}

void cnn_jw_end(cnn_json_writer *w)
{
    int d = w->depth;
    if (d == 0) return;
    int is_array = w->inline_[d];
    if (!is_array && w->count[d]) cnn_strbuf_printf(w->b, "\n%*s", 2 * (d - 1), "");
    cnn_strbuf_printf(w->b, "%c", is_array ? ']' : '}');
    w->depth--;
    if (w->depth == 0) cnn_strbuf_printf(w->b, "\n");
}

static void jw_double(cnn_json_writer *w, const char *key, double v, const char *fmt)
{
    jw_key(w, key);
    if (isfinite(v))
        cnn_strbuf_printf(w->b, fmt, v);
    else
        cnn_strbuf_printf(w->b, "null");
}

void cnn_jw_number(cnn_json_writer *w, const char *key, double v)
{
    jw_double(w, key, v, "%.17g");
}

void cnn_jw_float(cnn_json_writer *w, const char *key, double v)
{
    jw_double(w, key, v, "%.9g");
}

void cnn_jw_int(cnn_json_writer *w, const char *key, int64_t v)
{
    jw_key(w, key);
    cnn_strbuf_printf(w->b, "%lld", (long long)v);
}

void cnn_jw_bool(cnn_json_writer *w, const char *key, int v)
{
    jw_key(w, key);
    cnn_strbuf_printf(w->b, v ? "true" : "false");
}

void cnn_jw_string(cnn_json_writer *w, const char *key, const char *s)
{
    jw_key(w, key);
    cnn_strbuf_printf(w->b, "\"");
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            cnn_strbuf_printf(w->b, "\\%c", ch);
        else if (ch < 0x20)
            cnn_strbuf_printf(w->b, "\\u%04x", ch);
        else
            cnn_strbuf_printf(w->b, "%c", ch);
    }
    cnn_strbuf_printf(w->b, "\"");
}

void cnn_jw_floats(cnn_json_writer *w, const char *key, const float *v, size_t n)
{
    cnn_jw_array(w, key);
    for (size_t i = 0; i < n; i++) cnn_jw_float(w, NULL, v[i]);
    cnn_jw_end(w);
}

void cnn_jw_ints(cnn_json_writer *w, const char *key, const int32_t *v, size_t n)
{
    cnn_jw_array(w, key);
    for (size_t i = 0; i < n; i++) cnn_jw_int(w, NULL, v[i]);
    cnn_jw_end(w);
}

void cnn_jw_int64s(cnn_json_writer *w, const char *key, const int64_t *v, size_t n)
{
    cnn_jw_array(w, key);
    for (size_t i = 0; i < n; i++) cnn_jw_int(w, NULL, v[i]);
    cnn_jw_end(w);
}

/* ---------------------------------------------------------------- reader */

enum { MAX_DEPTH = 64 };

typedef struct parser {
    const char *p, *start, *end;
    const char *origin;
    int failed;
} parser;

static int perr(parser *ps, const char *what)
{
    if (ps->failed) return -1;
    int line = 1, col = 1;
    for (const char *q = ps->start; q < ps->p; q++) {
        if (*q == '\n')
            line++, col = 1;
        else
            col++;
    }
    ps->failed = 1;
    cnn_fail(CNN_ERR_FORMAT, "%s: line %d, column %d (offset %td): %s", ps->origin, line, col,
             ps->p - ps->start, what);
    return -1;
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int parse_value(parser *ps, cnn_json *out, int depth);

static int literal(parser *ps, const char *word, cnn_json *out, cnn_json_type type, double v)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n)) return perr(ps, "expected a JSON value");
    ps->p += n;
    out->type = type;
    out->number = v;
    return 0;
}

static int hex4(parser *ps, unsigned *v)
{
    if (ps->end - ps->p < 4) return perr(ps, "\\u needs four hex digits");
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = *ps->p++;
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (d < 0) return perr(ps, "\\u needs four hex digits");
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
}

/* Appends code point u as UTF-8. */
static void put_utf8(cnn_strbuf *b, unsigned u)
{
    char c[4];
    int n = 0;
    if (u < 0x80)
        c[n++] = (char)u;
    else if (u < 0x800)
        c[n++] = (char)(0xC0 | u >> 6), c[n++] = (char)(0x80 | (u & 63));
    else
        c[n++] = (char)(0xE0 | u >> 12), c[n++] = (char)(0x80 | (u >> 6 & 63)),
        c[n++] = (char)(0x80 | (u & 63));
    cnn_strbuf_append(b, c, (size_t)n);
}

static int escape(parser *ps, cnn_strbuf *b)
{
    if (ps->p >= ps->end) return perr(ps, "unterminated string");
    char ch = *ps->p++;
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *k = strchr(from, ch);
    if (ch && k) {
        cnn_strbuf_append(b, to + (k - from), 1);
        return 0;
    }
    unsigned u;
    if (ch != 'u') return perr(ps, "unknown escape in string");
    if (hex4(ps, &u)) return -1;
    put_utf8(b, u);
    return 0;
}

static int parse_string(parser *ps, char **out)
{
    cnn_strbuf b = {0};
    ps->p++; /* the opening quote */
    int rc = 0;
    while (!rc) {
        if (ps->p >= ps->end) {
            rc = perr(ps, "unterminated string");
            break;
        }
        char ch = *ps->p++;
        if (ch == '"') break;
        if ((unsigned char)ch < 0x20)
            rc = perr(ps, "control character in string");
        else if (ch == '\\')
            rc = escape(ps, &b);
        else
            cnn_strbuf_append(&b, &ch, 1);
    }
    cnn_strbuf_append(&b, "", 1);
    if (!rc && b.failed) rc = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", ps->origin);
    if (rc) {
        cnn_strbuf_free(&b);
        return -1;
    }
    *out = b.data;
    return 0;
}

static int parse_number(parser *ps, cnn_json *out)
{
    char buf[64];
    size_t n = 0;
    while (ps->p + n < ps->end && n < sizeof buf - 1 && strchr("+-0123456789.eE", ps->p[n])) n++;
    memcpy(buf, ps->p, n);
    buf[n] = '\0';
    char *endp;
    out->number = strtod(buf, &endp);
    if (n == 0 || endp != buf + n || !isfinite(out->number)) return perr(ps, "malformed number");
    out->type = CNN_JSON_NUMBER;
    ps->p += n;
    return 0;
}

static int push_item(parser *ps, cnn_json *c, int *cap)
{
    if (c->count == *cap) {
        int grown = *cap ? 2 * *cap : 8;
        cnn_json *items = realloc(c->items, sizeof *items * (size_t)grown);
        if (!items) return ps->failed = 1, cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", ps->origin), -1;
        c->items = items;
        *cap = grown;
    }
    memset(&c->items[c->count++], 0, sizeof c->items[0]);
    return 0;
}

/* Arrays and objects: items separated by commas up to the closing bracket. */
static int parse_container(parser *ps, cnn_json *out, int depth, char close)
{
    out->type = close == ']' ? CNN_JSON_ARRAY : CNN_JSON_OBJECT;
    if (depth >= MAX_DEPTH) return perr(ps, "nested too deeply");
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) return ps->p++, 0;
    for (int cap = 0;;) {
        if (push_item(ps, out, &cap)) return -1;
        cnn_json *item = &out->items[out->count - 1];
        skip_ws(ps);
        if (close == '}') {
            if (ps->p >= ps->end || *ps->p != '"') return perr(ps, "expected a member name in quotes");
            if (parse_string(ps, &item->key)) return -1;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') return perr(ps, "expected ':' after the member name");
            ps->p++;
        }
        if (parse_value(ps, item, depth + 1)) return -1;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) return ps->p++, 0;
        return perr(ps, close == ']' ? "expected ',' or ']'" : "expected ',' or '}'");
    }
}

static int parse_value(parser *ps, cnn_json *out, int depth)
{
    skip_ws(ps);
    if (ps->p >= ps->end) return perr(ps, "unexpected end of the text");
    switch (*ps->p) {
    case '{':
        return parse_container(ps, out, depth, '}');
    case '[':
        return parse_container(ps, out, depth, ']');
    case '"':
        out->type = CNN_JSON_STRING;
        return parse_string(ps, &out->string);
    case 't':
        return literal(ps, "true", out, CNN_JSON_BOOL, 1);
    case 'f':
        return literal(ps, "false", out, CNN_JSON_BOOL, 0);
    case 'n':
        return literal(ps, "null", out, CNN_JSON_NULL, NAN);
    default:
        return parse_number(ps, out);
    }
}

static void free_node(cnn_json *j)
{
    for (int i = 0; i < j->count; i++) free_node(&j->items[i]);
    free(j->items);
    free(j->string);
    free(j->key);
}

void cnn_json_free(cnn_json *j)
{
    if (!j) return;
    free_node(j);
    free(j);
}

cnn_json *cnn_json_parse(const char *text, size_t len, const char *origin)
{
    parser ps = {text, text, text + len, origin ? origin : "JSON", 0};
    cnn_json *root = calloc(1, sizeof *root);
    if (!root) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", ps.origin), NULL;
    int rc = parse_value(&ps, root, 0);
    skip_ws(&ps);
    if (!rc && ps.p != ps.end) rc = perr(&ps, "text after the JSON value");
    if (rc) {
        cnn_json_free(root);
        return NULL;
    }
    return root;
}

const cnn_json *cnn_json_get(const cnn_json *obj, const char *key)
{
    if (!obj || obj->type != CNN_JSON_OBJECT) return NULL;
    for (int i = 0; i < obj->count; i++)
        if (obj->items[i].key && !strcmp(obj->items[i].key, key)) return &obj->items[i];
    return NULL;
}
