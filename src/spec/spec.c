/* Model spec files: a model's architecture and training recipe written as Keras calls, one per line.
 *
 *   model: Model_2_s2
 *   input: (28, 28, 1)
 *   layers:
 *       Conv2D(32, kernel_size=3, padding="same", activation="relu")
 *       Flatten()
 *       Dense(10, activation="softmax")
 *   optimizer: Adam(learning_rate=0.005)
 *   fit: batch_size=512, epochs=60, validation="test", seed=1
 *   callbacks:
 *       EarlyStopping(monitor="val_loss", patience=5)
 *
 * The parser only splits lines into calls and rewrites positional arguments as Keras's keywords; the layer,
 * optimizer and callback constructors check the options themselves, and their errors are mapped back to a
 * line and column here. Format reference: docs/spec-format.md. */
#include "spec/spec.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "callbacks/callbacks.h"
#include "core/error.h"
#include "core/file.h"
#include "core/opts.h"
#include "layers/layer.h"
#include "optim/optimizer.h"

/* Keyword names of the positional arguments Keras accepts for a class name, from the layer, callback or
 * optimizer registry; NULL for a name none of them knows. */
static const char *const *positional_names(const char *name)
{
    const cnn_layer_ops *layer = cnn_layer_find(name);
    if (layer) return layer->positional;
    const cnn_callback_kind *callback = cnn_callback_kind_find(name);
    if (callback) return callback->positional;
    const cnn_optimizer_ops *optimizer = cnn_optimizer_find(name);
    return optimizer ? optimizer->positional : NULL;
}

static int fail_at(const spec_parser *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(const spec_parser *p, int line, int col, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cnn_fail(CNN_ERR_FORMAT, "%s:%d:%d: %s", p->origin, line, col, msg);
}

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

/* Length of an identifier at s (letters, digits, underscores; not starting with a digit). */
static size_t ident_len(const char *s)
{
    size_t n = 0;
    if (!isalpha((unsigned char)s[0]) && s[0] != '_') return 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '_') n++;
    return n;
}

/* Splits top-level comma-separated arguments, rewriting positional ones as keyword=value. Records, for each
 * argument, where it starts in the rewritten text and in the line, so option errors map to a column. */
static int rewrite_args(const spec_parser *p, spec_call *c, const char *args, size_t len, int col0)
{
    const char *const *names = positional_names(c->name);
    size_t out = 0, start = 0;
    int depth = 0, npos = 0, seen_kw = 0;
    char quote = 0;
    c->nargs = 0;
    for (size_t i = 0; i <= len; i++) {
        char ch = i < len ? args[i] : ',';
        if (quote) {
            if (ch == quote) quote = 0;
            continue;
        }
        if (ch == '"' || ch == '\'') quote = ch;
        if (ch == '(' || ch == '[') depth++;
        if (ch == ')' || ch == ']') depth--;
        if (ch != ',' || depth > 0) continue;
        const char *a = args + start;
        size_t alen = i - start;
        while (alen && isspace((unsigned char)*a)) a++, alen--;
        while (alen && isspace((unsigned char)a[alen - 1])) alen--;
        int col = col0 + (int)(a - args);
        if (alen == 0) {
            if (i == len && c->nargs == 0 && start == 0) break; /* "()" */
            return fail_at(p, c->line, col, "empty argument in %s(...)", c->name);
        }
        size_t id = ident_len(a);
        int keyword = id && skip_space(a + id)[0] == '=';
        if (!keyword) {
            if (seen_kw)
                return fail_at(p, c->line, col, "positional argument after keyword arguments in %s(...)",
                               c->name);
            if (!names || npos >= 2 || !names[npos])
                return fail_at(p, c->line, col, "%s takes no positional argument here; write name=value",
                               c->name);
        }
        seen_kw |= keyword;
        if (c->nargs == SPEC_MAX_ARGS) return fail_at(p, c->line, col, "too many arguments");
        c->arg_offset[c->nargs] = (int)out;
        c->arg_col[c->nargs++] = col;
        int k = snprintf(c->args + out, sizeof c->args - out, "%s%s%s%.*s", out ? ", " : "",
                         keyword ? "" : names[npos], keyword ? "" : "=", (int)alen, a);
        if (k < 0 || (size_t)k >= sizeof c->args - out) return fail_at(p, c->line, col, "arguments too long");
        if (out) c->arg_offset[c->nargs - 1] += 2;
        out += (size_t)k;
        npos += !keyword;
        start = i + 1;
    }
    if (quote || depth) return fail_at(p, c->line, col0, "unbalanced quotes or brackets in %s(...)", c->name);
    return CNN_OK;
}

/* Parses "Name" or "Name(args)" at column col of a logical line. */
static int parse_call(const spec_parser *p, const char *s, int line, int col, spec_call *c)
{
    memset(c, 0, sizeof *c);
    c->line = line;
    c->col = col;
    size_t n = ident_len(s);
    if (n == 0 || n >= sizeof c->name)
        return fail_at(p, line, col, "expected a name like Dense(...) or Flatten()");
    memcpy(c->name, s, n);
    const char *t = skip_space(s + n);
    if (*t == '\0') return CNN_OK;
    if (*t != '(') return fail_at(p, line, col + (int)(t - s), "expected '(' after %s", c->name);
    const char *close = t + strlen(t);
    while (close > t && isspace((unsigned char)close[-1])) close--;
    if (close[-1] != ')' || close - 1 == t)
        return fail_at(p, line, col + (int)(close - s), "expected ')' to end %s(...)", c->name);
    return rewrite_args(p, c, t + 1, (size_t)(close - 1 - (t + 1)), col + (int)(t + 1 - s));
}

/* Column of the option the last error points at, mapped back through the rewrite. */
int cnn_spec_call_error_col(const spec_call *c)
{
    int off = cnn_error_offset();
    int col = c->col;
    for (int i = 0; i < c->nargs && off >= 0; i++)
        if (c->arg_offset[i] <= off) col = c->arg_col[i];
    return col;
}

static int parse_input(const spec_parser *p, cnn_spec *s, const char *v, int line, int col)
{
    int h, w, c, used = 0;
    if (sscanf(v, "(%d ,%d ,%d )%n", &h, &w, &c, &used) != 3 || v[used] != '\0' || h < 1 || w < 1 || c < 1 ||
        (long)h * w * c > (1L << 28))
        return fail_at(p, line, col,
                       "expected input: (height, width, channels) with positive sizes, got '%s'", v);
    s->h = h, s->w = w, s->c = c;
    s->has_input = 1;
    return CNN_OK;
}

/* A model name (it names files): into out, cap bytes. */
static int parse_name(const spec_parser *p, char *out, size_t cap, const char *v, int line, int col)
{
    size_t n = strlen(v), at;
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) v++, n -= 2;
    /* The name becomes a folder and file names (a study writes NAME/): "..", "a/b" or "-x" must not. */
    const char *why = cnn_file_name_problem(v, n, &at);
    if (why) return fail_at(p, line, col + (int)at, "model name %s", why);
    if (n >= cap) return fail_at(p, line, col, "name must be 1 to %zu characters", cap - 1);
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)v[i]) && !strchr("_.-", v[i]))
            return fail_at(p, line, col + (int)i,
                           "model names use letters, digits, '_', '.' and '-' (they name files)");
    memcpy(out, v, n);
    out[n] = '\0';
    return CNN_OK;
}

static int add_call(const spec_parser *p, spec_call *list, int *count, int max, const char *v, int line,
                    int col)
{
    if (*count == max) return fail_at(p, line, col, "more than %d entries in this section", max);
    int rc = parse_call(p, v, line, col, &list[*count]);
    if (!rc) (*count)++;
    return rc;
}

/* "key: value" lines at the top level, or "layers:" / "callbacks:" opening a section. */
static int parse_keyed(spec_parser *p, cnn_spec *s, const char *text, int line, int col)
{
    size_t k = ident_len(text);
    const char *colon = skip_space(text + k);
    if (k == 0 || *colon != ':') return 1; /* not a key line */
    const char *v = skip_space(colon + 1);
    int vcol = col + (int)(v - text);
    char key[32];
    snprintf(key, sizeof key, "%.*s", (int)k, text);
    p->section = SECTION_NONE;
    if (!strcmp(key, "layers") || !strcmp(key, "callbacks") || !strcmp(key, "augment")) {
        p->section = key[0] == 'l' ? SECTION_LAYERS : key[0] == 'c' ? SECTION_CALLBACKS : SECTION_AUGMENT;
        if (*v)
            return fail_at(p, line, vcol, "'%s:' stands on its own line; list one call per line below it",
                           key);
        return CNN_OK;
    }
    if (!*v) return fail_at(p, line, vcol, "'%s:' needs a value", key);
    if (!strcmp(key, "model")) return parse_name(p, s->name, sizeof s->name, v, line, vcol);
    if (!strcmp(key, "input")) return parse_input(p, s, v, line, vcol);
    if (!strcmp(key, "initial_weights"))
        return parse_name(p, s->initial_weights, sizeof s->initial_weights, v, line, vcol);
    if (!strcmp(key, "optimizer")) {
        s->has_optimizer = 1;
        return parse_call(p, v, line, vcol, &s->optimizer);
    }
    if (!strcmp(key, "loss")) {
        s->has_loss = 1;
        return parse_call(p, v, line, vcol, &s->loss);
    }
    if (!strcmp(key, "fit")) {
        char wrapped[SPEC_MAX_LINE + 8];
        snprintf(wrapped, sizeof wrapped, "fit(%s)", v);
        s->has_fit = 1;
        return parse_call(p, wrapped, line, vcol - 4, &s->fit);
    }
    static const char *const keys[] = {"model", "input",     "layers",  "optimizer",      "loss",
                                       "fit",   "callbacks", "augment", "initial_weights"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (cnn_edit_distance(key, keys[i]) <= 2)
            return fail_at(p, line, col, "unknown key '%s' (did you mean '%s'?)", key, keys[i]);
    return fail_at(
        p, line, col,
        "unknown key '%s' (expected model, input, layers, optimizer, loss, fit, callbacks, augment "
        "or initial_weights)",
        key);
}

static int parse_logical_line(spec_parser *p, cnn_spec *s, const char *text, int line, int col)
{
    int rc = parse_keyed(p, s, text, line, col);
    if (rc <= 0) return rc;
    if (p->section == SECTION_LAYERS) {
        size_t n = ident_len(text);
        char type[48];
        snprintf(type, sizeof type, "%.*s", (int)n, text);
        if (n && !cnn_layer_find(type) && !cnn_spec_is_vgg16(type)) {
            const char *near = cnn_layer_suggest(type);
            if (near)
                return fail_at(p, line, col, "unknown layer type '%s' (did you mean '%s'?)", type, near);
            return fail_at(p, line, col, "unknown layer type '%s' (known: %s)", type, cnn_layer_types());
        }
        return add_call(p, s->layers, &s->nlayers, SPEC_MAX_LAYERS, text, line, col);
    }
    if (p->section == SECTION_CALLBACKS)
        return add_call(p, s->callbacks, &s->ncallbacks, SPEC_MAX_CALLBACKS, text, line, col);
    if (p->section == SECTION_AUGMENT)
        return add_call(p, s->augment, &s->naugment, SPEC_MAX_AUGMENT, text, line, col);
    return fail_at(p, line, col,
                   "expected 'key: value' (model, input, optimizer, loss, fit) or a 'layers:' section");
}

/* Removes a comment (outside quotes) and trailing space; returns the bracket depth change. */
static int clean_line(char *s)
{
    int depth = 0;
    char quote = 0;
    for (char *c = s; *c; c++) {
        if (quote) {
            if (*c == quote) quote = 0;
        } else if (*c == '"' || *c == '\'') {
            quote = *c;
        } else if (*c == '#') {
            *c = '\0';
            break;
        } else {
            depth += (*c == '(' || *c == '[') - (*c == ')' || *c == ']');
        }
    }
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return depth;
}

/* Feeds one physical line; calls spanning lines (open brackets) are joined first. */
static int feed_line(spec_parser *p, cnn_spec *s, char *raw, int line)
{
    for (char *c = raw; *c; c++)
        if ((unsigned char)*c < 32 && *c != '\t')
            return fail_at(p, line, (int)(c - raw) + 1, "control character in the file");
    int depth = clean_line(raw);
    const char *t = skip_space(raw);
    if (p->pending_len) {
        if (p->pending_len + strlen(t) + 2 >= sizeof p->pending)
            return fail_at(p, p->pending_line, p->pending_col, "call spans too many characters");
        strcat(p->pending, " ");
        strcat(p->pending, t);
        p->pending_len = strlen(p->pending);
        p->depth += depth;
    } else {
        if (!*t) return CNN_OK;
        if (strlen(t) >= sizeof p->pending)
            return fail_at(p, line, 1, "line longer than %d characters", SPEC_MAX_LINE);
        strcpy(p->pending, t);
        p->pending_len = strlen(t);
        p->pending_line = line;
        p->pending_col = (int)(t - raw) + 1;
        p->depth = depth;
    }
    if (p->depth < 0) return fail_at(p, p->pending_line, p->pending_col, "unbalanced ')'");
    if (p->depth > 0) return CNN_OK;
    p->pending_len = 0;
    return parse_logical_line(p, s, p->pending, p->pending_line, p->pending_col);
}

static int check_complete(const spec_parser *p, const cnn_spec *s, int lines)
{
    if (p->pending_len)
        return fail_at(p, p->pending_line, p->pending_col, "unclosed '(' at the end of the file");
    if (!s->name[0]) return fail_at(p, 1, 1, "missing 'model: NAME'");
    if (!s->has_input) return fail_at(p, 1, 1, "missing 'input: (height, width, channels)'");
    if (s->nlayers == 0)
        return fail_at(p, lines, 1, "no layers: add a 'layers:' section with one call per line");
    return CNN_OK;
}

/* Everything a later run would trip over, found now: the model builds, the fit and callbacks parse. */
static int validate(const cnn_spec *s, size_t max_params)
{
    size_t nparams = 0;
    if (max_params && cnn_spec_check_unbuilt(s, &nparams)) return cnn_errcode();
    if (nparams <= max_params || !max_params) {
        cnn_model *m = cnn_spec_build(s, 0, 0);
        if (!m) return cnn_errcode();
        cnn_model_free(m);
    }
    int rc = cnn_spec_fit_check(s);
    cnn_callback **cbs;
    int n;
    if (!rc) rc = cnn_spec_augment_check(s);
    /* Every callback is made to check its options, checkpoints too; making one writes nothing. */
    if (!rc) rc = cnn_spec_callbacks(s, ".", &cbs, &n);
    if (!rc) {
        for (int i = 0; i < n; i++) cnn_callback_free(cbs[i]);
        free(cbs);
    }
    return rc;
}

cnn_spec *cnn_spec_parse(const char *text, const char *origin)
{
    return cnn_spec_parse_budget(text, origin, 0);
}

cnn_spec *cnn_spec_parse_budget(const char *text, const char *origin, size_t max_params)
{
    cnn_spec *s = calloc(1, sizeof *s);
    spec_parser *p = calloc(1, sizeof *p);
    char *copy = text ? strdup(text) : NULL;
    if (!s || !p || !copy) {
        cnn_fail(text ? CNN_ERR_NOMEM : CNN_ERR_INVALID, "spec: %s", text ? "out of memory" : "no text");
        goto fail;
    }
    snprintf(p->origin, sizeof p->origin, "%s", origin ? origin : "spec");
    snprintf(s->origin, sizeof s->origin, "%s", p->origin);
    s->text = strdup(text);
    if (!s->text) goto fail;
    int line = 0, rc = CNN_OK;
    for (char *cur = copy, *next; cur && !rc; cur = next) {
        next = strchr(cur, '\n');
        if (next) *next++ = '\0';
        size_t n = strlen(cur);
        if (n && cur[n - 1] == '\r') cur[n - 1] = '\0';
        rc = feed_line(p, s, cur, ++line);
    }
    if (!rc) rc = check_complete(p, s, line);
    if (!rc) rc = validate(s, max_params);
    if (rc) goto fail;
    free(copy);
    free(p);
    return s;
fail:
    free(copy);
    free(p);
    cnn_spec_free(s);
    return NULL;
}

cnn_spec *cnn_spec_load(const char *path)
{
    /* cnn_read_file: only a regular file (a FIFO would hang the reader). */
    char *buf = NULL;
    size_t n = 0;
    if (cnn_read_file(path, &buf, &n, SPEC_MAX_FILE)) {
        if (cnn_errcode() == CNN_ERR_FORMAT)
            cnn_fail(CNN_ERR_FORMAT, "%s: larger than %d bytes; is this a spec file?", path, SPEC_MAX_FILE);
        return NULL;
    }
    cnn_spec *s = NULL;
    if (memchr(buf, '\0', n))
        cnn_fail(CNN_ERR_FORMAT, "%s: offset %zu: NUL byte; spec files are text", path,
                 (size_t)((char *)memchr(buf, '\0', n) - buf));
    else
        s = cnn_spec_parse(buf, path);
    free(buf);
    return s;
}

void cnn_spec_free(cnn_spec *s)
{
    if (!s) return;
    free(s->text);
    free(s);
}

const char *cnn_spec_name(const cnn_spec *s)
{
    return s->name;
}

const char *cnn_spec_text(const cnn_spec *s)
{
    return s->text;
}

void cnn_spec_input_shape(const cnn_spec *s, int *h, int *w, int *c)
{
    *h = s->h;
    *w = s->w;
    *c = s->c;
}
