/* The CLI's MPI job: joining it when mpirun or srun started the process, the layout of ranks and threads over
 * the nodes, and the small collectives train and study share. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/mpi.h"

static cli_parallel g_par;
static int g_joined;

/* Open MPI's mpirun and the PMIx/PMI launchers (srun --mpi=pmix) set these; a plain start has none, and then
 * MPI is not touched at all. */
static int launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

/* Rank 0's text (the run folder it chose) to every rank. */
static void share_text(char *buf, int cap)
{
    MPI_Bcast(buf, cap, MPI_CHAR, 0, MPI_COMM_WORLD);
    buf[cap - 1] = '\0';
}

static int any_flag(int flag)
{
    int all = 0;
    MPI_Allreduce(&flag, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return all;
}

void cli_mpi_abort(const char *what)
{
    cli_error("rank %d of %d: %s; ending every rank", g_par.rank, g_par.ranks, what);
    fflush(NULL);
    MPI_Abort(MPI_COMM_WORLD, EXIT_FAILURE_RUN);
}

/* Ranks on this rank's node and the number of nodes, from the job's shared-memory split. */
static void node_layout(int *local, int *nodes)
{
    MPI_Comm node;
    int local_rank;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_par.rank, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, local);
    MPI_Comm_rank(node, &local_rank);
    int leader = local_rank == 0;
    MPI_Allreduce(&leader, nodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Comm_free(&node);
}

/* The node's physical cores shared by its ranks, and never more than the CPUs this rank is bound to (mpirun
 * binds each of up to 2 ranks to one core by default): ranks x threads never exceed the cores. */
static int threads_per_rank(int local, int *bound)
{
    cpu_set_t set;
    *bound = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    int t = cnn_physical_cores() / local;
    if (*bound > 0 && t > *bound) t = *bound;
    return t < 1 ? 1 : t;
}

static void print_layout(const char *cmd, int local, int nodes, int bound)
{
    int cores = cnn_physical_cores();
    printf("MPI: %s on %d ranks over %d node%s (%d per node, %d physical cores each): %d thread%s per rank\n",
           cmd, g_par.ranks, nodes, nodes == 1 ? "" : "s", local, cores, g_par.threads,
           g_par.threads == 1 ? "" : "s");
    if (g_par.threads < cores / local)
        printf("MPI: each rank is bound to %d CPU%s; `mpirun --bind-to none` (or --map-by slot:PE=%d) gives "
               "it %d "
               "threads\n",
               bound, bound == 1 ? "" : "s", cores / local, cores / local);
    fflush(stdout);
}

int cli_mpi_begin(const char *cmd)
{
    if (!launched_by_mpi()) return 0;
    int provided;
    /* Only the thread that runs fit calls MPI; OpenMP threads never do. */
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return cli_error("cannot join the MPI job"), EXIT_FAILURE_RUN;
    g_joined = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_par.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_par.ranks);
    if (g_par.ranks == 1) return 0;
    int train = !strcmp(cmd, "train"), study = !strcmp(cmd, "study");
    if (!train && !study) {
        if (g_par.rank == 0)
            cli_error("'%s' runs in one process; on several MPI ranks only train and study run", cmd);
        return EXIT_USAGE;
    }
    int local, nodes, bound;
    node_layout(&local, &nodes);
    g_par.threads = threads_per_rank(local, &bound);
    g_par.fit = cli_mpi_fit, g_par.evaluate = cli_mpi_evaluate, g_par.any = any_flag;
    g_par.share_text = share_text;
    g_par.assign = cli_mpi_assign, g_par.collect = cli_mpi_collect;
    if (train)
        cli_par = &g_par;
    else
        cli_spread = &g_par;
    if (g_par.rank == 0) print_layout(cmd, local, nodes, bound);
    return 0;
}

int cli_mpi_end(int rc)
{
    if (g_joined) MPI_Finalize();
    return rc;
}
