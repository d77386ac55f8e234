/* cnnlab: command dispatch (the shared argument helpers are in args.c). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char *const USAGE =
    "usage: cnnlab COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  train     train a model on an IDX dataset (default: Fashion-MNIST)\n"
    "  eval      evaluate a saved model on the test set\n"
    "  predict   class probabilities of a saved model, as CSV\n"
    "  summary   print a model's layer table without training\n"
    "  study     train a set of spec files in turn and compare them (the study)\n"
    "  profile   time a model's training step layer by layer\n"
    "  export-weights  write a saved model's weights as a Keras HDF5 file (load_weights reads it)\n"
    "  models    list the built-in models of the study\n"
    "\n"
    "`cnnlab COMMAND --help` describes each command's options.\n"
    "\n"
    "exit codes:\n"
    "  0  success\n"
    "  1  the work failed: unreadable or malformed data or model file, out of memory, write error\n"
    "  2  usage error: unknown command or option, bad option value\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(USAGE, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(USAGE, stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "--version")) {
        printf("cnnlab %s\n", CNN_VERSION);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "train")) return cli_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cli_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "predict")) return cli_predict(argc - 1, argv + 1);
    if (!strcmp(cmd, "summary")) return cli_summary(argc - 1, argv + 1);
    if (!strcmp(cmd, "study")) return cli_study(argc - 1, argv + 1);
    if (!strcmp(cmd, "profile")) return cli_profile(argc - 1, argv + 1);
    if (!strcmp(cmd, "export-weights")) return cli_export_weights(argc - 1, argv + 1);
    if (!strcmp(cmd, "models")) {
        cli_spec_list(stdout);
        return EXIT_OK;
    }
    cli_error("unknown command '%s' (try: cnnlab --help)", cmd);
    return EXIT_USAGE;
}
