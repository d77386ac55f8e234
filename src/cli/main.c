/* cnnlab: command dispatch (the shared argument helpers are in args.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#ifdef CNN_HAVE_MPI
#include "cli/mpi.h"
#define PARALLEL_HELP                                                                                        \
    "several processes (this build has Open MPI):\n"                                                         \
    "  mpirun -np N cnnlab train SPEC ...   one model, each batch split over the N ranks (data parallel)\n"  \
    "  mpirun -np N cnnlab study DIR ...    whole models handed to the ranks, results collected on rank 0\n" \
    "  Threads per rank: the node's cores over its ranks. docs/scaling.md has cluster commands.\n"
#else
#define PARALLEL_HELP                                                                                        \
    "several processes: not in this build (Open MPI was not found when it was built; install\n"              \
    "  libopenmpi-dev and openmpi-bin and rebuild for `mpirun -np N cnnlab train|study`).\n"
#endif

const cli_parallel *cli_par, *cli_spread;

int cli_writer(void)
{
    return !cli_par || cli_par->rank == 0;
}

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
    "  report    draw every picture and the HTML report of a run or study folder\n"
    "  augment   draw the augmentation sample: training images above their augmented versions\n"
    "  models    list the built-in models of the study\n"
    "\n"
    "`cnnlab COMMAND --help` describes each command's options.\n"
    "\n" PARALLEL_HELP "\n"
    "environment:\n"
    "  CNNLAB_ISA  kernel path: avx512, avx2, generic or auto (default: the best this CPU has)\n"
    "  CNNLAB_CONV convolution algorithm: auto (Winograd for wide 3x3 stride-1 layers) or direct\n"
    "\n"
    "exit codes:\n"
    "  0  success\n"
    "  1  the work failed: unreadable or malformed data or model file, out of memory, write error\n"
    "  2  usage error: unknown command or option, bad option value\n";

static int dispatch(int argc, char **argv)
{
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(USAGE, stdout);
        return EXIT_OK;
    }
    /* An unusable CNNLAB_ISA is a usage error before any work starts. */
    if (cnn_set_isa(NULL)) {
        cli_error("%s", cnn_errmsg());
        return EXIT_USAGE;
    }
    if (!strcmp(cmd, "--version")) {
        char cpu[128];
        cli_cpu_name(cpu, sizeof cpu);
        printf("cnnlab %s\nkernels: %s (%s)\n", CNN_VERSION, cnn_isa_name(), cpu);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "train")) return cli_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cli_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "predict")) return cli_predict(argc - 1, argv + 1);
    if (!strcmp(cmd, "summary")) return cli_summary(argc - 1, argv + 1);
    if (!strcmp(cmd, "study")) return cli_study(argc - 1, argv + 1);
    if (!strcmp(cmd, "profile")) return cli_profile(argc - 1, argv + 1);
    if (!strcmp(cmd, "export-weights")) return cli_export_weights(argc - 1, argv + 1);
    if (!strcmp(cmd, "report")) return cli_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "augment")) return cli_augment(argc - 1, argv + 1);
    if (!strcmp(cmd, "models")) {
        cli_spec_list(stdout);
        return EXIT_OK;
    }
    cli_error("unknown command '%s' (try: cnnlab --help)", cmd);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    atexit(cnn_report_cleanup); /* font caches of the pictures, so that leak checkers see a clean exit */
    if (argc < 2) {
        fputs(USAGE, stderr);
        return EXIT_USAGE;
    }
#ifdef CNN_HAVE_MPI
    int rc = cli_mpi_begin(argv[1]);
    return cli_mpi_end(rc ? rc : dispatch(argc, argv));
#else
    /* Started by mpirun or srun, a build without MPI would run N copies that each train alone over the same
     * files. */
    const char *size = getenv("OMPI_COMM_WORLD_SIZE") ? getenv("OMPI_COMM_WORLD_SIZE") : getenv("PMI_SIZE");
    if (size && atoi(size) > 1) {
        cli_error(
            "this build has no MPI support (Open MPI was not found when it was built): run one process, "
            "or rebuild with libopenmpi-dev for `mpirun -np N`");
        return EXIT_USAGE;
    }
    return dispatch(argc, argv);
#endif
}
