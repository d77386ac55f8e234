/* Finding a spec: a file path, or one of the study's models compiled into the binary. */
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/cli.h"

cnn_spec *cli_spec_resolve(const char *what, int *usage)
{
    struct stat st;
    *usage = 0;
    if (stat(what, &st) == 0 && S_ISREG(st.st_mode)) {
        cnn_spec *s = cnn_spec_load(what);
        if (!s) cli_error("%s", cnn_errmsg());
        return s;
    }
    for (const cli_builtin_spec *b = cli_builtin_specs; b->name; b++)
        if (!strcasecmp(b->name, what)) {
            cnn_spec *s = cnn_spec_parse(b->text, b->path);
            if (!s) cli_error("%s", cnn_errmsg());
            return s;
        }
    *usage = 1;
    return NULL;
}

void cli_spec_list(FILE *out)
{
    for (const cli_builtin_spec *b = cli_builtin_specs; b->name; b++) fprintf(out, "  %s\n", b->name);
}
