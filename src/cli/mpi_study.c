/* A study on MPI ranks: whole models are handed to the ranks, each trains its models in one process with its
 * share of the node's cores, and rank 0 collects every result from the run records the others wrote (the
 * study folder must be on a file system all ranks share, as a cluster's home or scratch is). */
#include <stdlib.h>

#include "cli/mpi.h"

/* A model's training work, for ordering: forward GEMM multiply-adds per sample times the epochs. A spec that
 * does not build costs nothing (it fails at once wherever it goes). */
static double spec_cost(const cnn_spec *s)
{
    cnn_model *m = cnn_spec_build_model(s, 1);
    cnn_spec_fit f;
    cnn_spec_fit_settings(s, &f);
    double cost = 0;
    for (int i = 0; m && i < cnn_model_num_layers(m); i++) {
        int mnk[3];
        if (cnn_model_layer_gemm(m, i, 1, mnk) == CNN_OK) cost += (double)mnk[0] * mnk[1] * mnk[2];
    }
    cnn_model_free(m);
    return cost * (f.epochs > 0 ? f.epochs : 1);
}

/* Largest first, each to the rank with the least work so far (ties: the lowest rank): every rank computes the
 * same plan from the same specs, so no message is needed. */
void cli_mpi_assign(cnn_spec *const *specs, int n, int *owner)
{
    int ranks = cli_spread->ranks;
    double *cost = malloc(sizeof *cost * (size_t)n), *load = calloc((size_t)ranks, sizeof *load);
    if (!cost || !load) cli_mpi_abort("study: out of memory");
    for (int i = 0; i < n; i++) cost[i] = spec_cost(specs[i]), owner[i] = -1;
    for (int done = 0; done < n; done++) {
        int big = -1, r = 0;
        for (int i = 0; i < n; i++)
            if (owner[i] < 0 && (big < 0 || cost[i] > cost[big])) big = i;
        for (int q = 1; q < ranks; q++)
            if (load[q] < load[r]) r = q;
        owner[big] = r;
        load[r] += cost[big];
    }
    free(cost);
    free(load);
}

void cli_mpi_collect(int *status, int n)
{
    int *all = malloc(sizeof *all * (size_t)n);
    if (!all) cli_mpi_abort("study: out of memory");
    MPI_Reduce(status, all, n, MPI_INT, MPI_MAX, 0, MPI_COMM_WORLD);
    if (cli_spread->rank == 0)
        for (int i = 0; i < n; i++) status[i] = all[i];
    free(all);
}
