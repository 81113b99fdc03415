/* The C interface of the PETSc/SLEPc plugin (libvsense_slepc.so).
 *
 * The plugin is loaded at run time with dlopen(RTLD_LOCAL), so that nothing of PETSc's (the
 * MPI-parallel MUMPS, parallel HDF5, ...) enters the program's global symbol scope; the
 * sequential MUMPS of the CPU path is deep-bound on its side (solvers/modal/sequential_mumps.hpp)
 * and both MUMPS copies, which export the same symbols, stay apart. Only plain C types cross this
 * boundary (no exceptions, no C++ objects, no logging library state): errors come back as a
 * non-zero return and a message, log lines through a callback.
 *
 * Every function except vsense_slepc_api_version is collective over MPI_COMM_WORLD (PETSc
 * initialises MPI itself when the program did not). */
#ifndef VSENSE_SLEPC_API_H
#define VSENSE_SLEPC_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VSENSE_SLEPC_API_VERSION 1

/* level: 0 debug, 1 info, 2 warning. Called on rank 0 only. */
typedef void (*vsense_slepc_log_fn)(int level, const char* message, void* context);

/* The pencil, given on rank 0 (other ranks pass n = -1 and null arrays): the upper triangle
 * (diagonal included) of K and of M on one common sparsity pattern, compressed by rows,
 * 0-based. The plugin sends each rank its block of rows. */
typedef struct {
  int64_t n;
  const int64_t* row_ptr; /* [n + 1] */
  const int64_t* columns; /* [row_ptr[n]] ascending within a row, each >= its row */
  const double* stiffness;
  const double* mass;
  vsense_slepc_log_fn log;
  void* log_context;
} vsense_slepc_pencil;

typedef struct {
  int n_modes;        /* eigenpairs wanted: those nearest `target` */
  double target;      /* (rad/s)^2, below the lowest wanted eigenvalue */
  double tolerance;   /* relative, on the eigenpairs */
  int max_iterations; /* restarts */
  int subspace_size;  /* 0: SLEPc's default (ncv) */
} vsense_slepc_request;

/* Receives one eigenpair, in ascending order, on every rank (rank 0's eigenvalue everywhere);
 * `vector` holds all n entries (not normalised) on rank 0 and is null on the others. */
typedef void (*vsense_slepc_store_fn)(int index, double eigenvalue, const double* vector,
                                      void* context);

typedef struct {
  int n_converged;          /* pairs delivered to the store callback, ascending */
  int iterations;           /* Krylov-Schur restarts */
  int ranks;                /* MPI ranks that took part */
  double factor_seconds;    /* MUMPS Cholesky of K - target M */
  double solve_seconds;     /* Krylov-Schur iterations */
  double factor_nonzeros;   /* MUMPS's entries in the factor, all ranks */
  double factor_megabytes;  /* MUMPS's memory, all ranks */
} vsense_slepc_report;

typedef struct vsense_slepc_problem vsense_slepc_problem;

int vsense_slepc_api_version(void);

/* Initialises PETSc/SLEPc (once per process) and distributes the pencil. */
int vsense_slepc_create(const vsense_slepc_pencil* pencil, vsense_slepc_problem** problem,
                        char* error, size_t error_size);

/* Krylov-Schur with shift-and-invert on a MUMPS Cholesky factor of K - target M. Rank 0's
 * request holds for all ranks. */
int vsense_slepc_solve(vsense_slepc_problem* problem, const vsense_slepc_request* request,
                       vsense_slepc_store_fn store, void* store_context,
                       vsense_slepc_report* report, char* error, size_t error_size);

/* Inertia of K - sigma M from a MUMPS LDL^T factorisation: eigenvalues below sigma, and the
 * zero pivots (non-zero when sigma is an eigenvalue to working precision). Rank 0's sigma holds;
 * the counts are the same on all ranks. */
int vsense_slepc_inertia(vsense_slepc_problem* problem, double sigma, int64_t* below,
                         int64_t* zero, double* seconds, char* error, size_t error_size);

/* Equations of the pencil (on every rank). */
int64_t vsense_slepc_size(const vsense_slepc_problem* problem);

void vsense_slepc_destroy(vsense_slepc_problem* problem);

/* "SLEPc 3.18.2, PETSc 3.18.x, MUMPS" and the rank count. */
int vsense_slepc_describe(char* text, size_t text_size);

#ifdef __cplusplus
}
#endif

#endif
