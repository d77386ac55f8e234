/* The CLI under mpirun (built only with Open MPI). */
#ifndef CNN_CLI_MPI_H
#define CNN_CLI_MPI_H

#include <mpi.h>

#include "cli/cli.h"

/* Joins the MPI job when the process was started by mpirun or srun (else nothing: a plain process) and sets
 * cli_par (train) or cli_spread (study). Returns 0, or an exit code for a command that cannot run on ranks.
 */
int cli_mpi_begin(const char *cmd);
/* Leaves the MPI job; returns rc. */
int cli_mpi_end(int rc);

/* The pieces of cli_parallel, by command (src/cli/mpi_train.c, src/cli/mpi_study.c). */
int cli_mpi_fit(cnn_model *m, const cnn_dataset *train, const cnn_fit_config *fc, const cli_fit_job *job,
                cnn_history *h);
int cli_mpi_evaluate(cnn_run *run, cnn_model *m, const cnn_dataset *test, int batch_size);
void cli_mpi_assign(cnn_spec *const *specs, int n, int *owner);
void cli_mpi_collect(int *status, int n);
/* Ends the whole job after an error on one rank, which would otherwise leave the others waiting. */
void cli_mpi_abort(const char *what);

#endif
