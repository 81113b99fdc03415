// The PETSc/SLEPc plugin: the distributed eigen-solve of `vsense modes --backend slepc` (and of
// `auto` under mpirun with several ranks). See vsense_slepc_api.h for why it is a plugin.
//
// Rank 0 holds the assembled pencil; each rank receives a contiguous block of rows, PETSc builds
// MPISBAIJ matrices from them, SLEPc's Krylov-Schur runs shift-and-invert on a MUMPS Cholesky
// factor, and the eigenvectors come back to rank 0. The inertia of K - sigma M (the Sturm
// count) is a MUMPS LDL^T factorisation of the same distributed matrices.
#include <mpi.h>
#include <petscksp.h>
#include <slepceps.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "vsense_slepc_api.h"

namespace {

/// A failed PETSc/MPI call, with PETSc's own first message when there is one.
class Failure : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

thread_local std::string first_petsc_message;

PetscErrorCode record_error(MPI_Comm, int line, const char* function, const char* file,
                            PetscErrorCode code, PetscErrorType type, const char* message,
                            void*) {
  if (type == PETSC_ERROR_INITIAL) {
    first_petsc_message = std::string(message ? message : "") + " (" + (function ? function : "") +
                          " in " + (file ? file : "") + ":" + std::to_string(line) + ")";
  }
  return code;
}

void check(PetscErrorCode code, const char* call) {
  if (code == 0) return;
  const char* text = nullptr;
  PetscErrorMessage(code, &text, nullptr);
  std::string message = std::string("PETSc: ") + call + " failed";
  if (!first_petsc_message.empty()) {
    message += ": " + first_petsc_message;
  } else if (text) {
    message += ": " + std::string(text);
  }
  first_petsc_message.clear();
  throw Failure(message);
}
#define VSENSE_PETSC(call) check((call), #call)

void check_mpi(int code, const char* call) {
  if (code != MPI_SUCCESS) throw Failure(std::string("MPI: ") + call + " failed");
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void copy_message(const std::string& text, char* out, size_t size) {
  if (!out || size == 0) return;
  std::snprintf(out, size, "%s", text.c_str());
}

/// Runs `body`, turning any exception into a non-zero return and a message.
template <class Body>
int guarded(char* error, size_t error_size, Body&& body) {
  try {
    body();
    return 0;
  } catch (const std::exception& e) {
    copy_message(e.what(), error, error_size);
  } catch (...) {
    copy_message("unknown failure in the SLEPc plugin", error, error_size);
  }
  return 1;
}

// --- PETSc lifetime -------------------------------------------------------------------------

bool petsc_ready = false;

int finalize_with_mpi(MPI_Comm, int, void*, void*) {
  // MPI_Finalize deletes MPI_COMM_SELF's attributes first, while MPI still works: the place for
  // a library that did not initialise MPI to shut itself down.
  PetscBool finalised = PETSC_FALSE;
  PetscFinalized(&finalised);
  if (!finalised) SlepcFinalize();
  return MPI_SUCCESS;
}

void finalize_at_exit() {
  PetscBool finalised = PETSC_FALSE;
  PetscFinalized(&finalised);
  int mpi_finalised = 0;
  MPI_Finalized(&mpi_finalised);
  if (!finalised && !mpi_finalised) SlepcFinalize();  // also finalises MPI (PETSc started it)
}

void ensure_petsc() {
  if (petsc_ready) return;
  int mpi_initialised = 0;
  check_mpi(MPI_Initialized(&mpi_initialised), "MPI_Initialized");
  // No signal handlers of PETSc's in a vsense process; PETSC_OPTIONS in the environment still
  // reaches the solver objects (EPSSetFromOptions) for expert tuning.
  static char program[] = "vsense";
  static char no_signals[] = "-no_signal_handler";
  static char* arguments[] = {program, no_signals, nullptr};
  int argc = 2;
  char** argv = arguments;
  VSENSE_PETSC(SlepcInitialize(&argc, &argv, nullptr, nullptr));
  VSENSE_PETSC(PetscPushErrorHandler(record_error, nullptr));
  if (mpi_initialised) {
    int key = MPI_KEYVAL_INVALID;
    check_mpi(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, finalize_with_mpi, &key, nullptr),
              "MPI_Comm_create_keyval");
    check_mpi(MPI_Comm_set_attr(MPI_COMM_SELF, key, nullptr), "MPI_Comm_set_attr");
  } else {
    std::atexit(finalize_at_exit);
  }
  petsc_ready = true;
}

// --- Distribution ---------------------------------------------------------------------------

constexpr std::size_t max_message = std::size_t{1} << 28;  // elements per MPI call

template <class T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}
template <>
MPI_Datatype mpi_type<PetscInt>() {
  return sizeof(PetscInt) == 8 ? MPI_INT64_T : MPI_INT;
}

template <class T>
void send(const T* data, std::size_t count, int to) {
  for (std::size_t offset = 0; offset < count; offset += max_message) {
    const int piece = static_cast<int>(std::min(max_message, count - offset));
    check_mpi(MPI_Send(data + offset, piece, mpi_type<T>(), to, 7, PETSC_COMM_WORLD), "MPI_Send");
  }
}

template <class T>
void receive(T* data, std::size_t count) {
  for (std::size_t offset = 0; offset < count; offset += max_message) {
    const int piece = static_cast<int>(std::min(max_message, count - offset));
    check_mpi(MPI_Recv(data + offset, piece, mpi_type<T>(), 0, 7, PETSC_COMM_WORLD,
                       MPI_STATUS_IGNORE),
              "MPI_Recv");
  }
}

/// One rank's rows [begin, end) of the pencil, row pointers rebased to 0.
struct LocalRows {
  PetscInt begin = 0, end = 0;
  std::vector<PetscInt> row_ptr, columns;
  std::vector<double> stiffness, mass;
};

PetscInt row_begin(std::int64_t n, int rank, int size) {
  return static_cast<PetscInt>(n * rank / size);
}

LocalRows distribute(const vsense_slepc_pencil& pencil, std::int64_t n, int rank, int size) {
  LocalRows local;
  local.begin = row_begin(n, rank, size);
  local.end = row_begin(n, rank + 1, size);
  const std::size_t rows = static_cast<std::size_t>(local.end - local.begin);
  local.row_ptr.resize(rows + 1);
  if (rank == 0) {
    for (int r = size - 1; r >= 0; --r) {
      const PetscInt b = row_begin(n, r, size), e = row_begin(n, r + 1, size);
      const std::int64_t first = pencil.row_ptr[b], last = pencil.row_ptr[e];
      std::vector<PetscInt> pointers(static_cast<std::size_t>(e - b) + 1), columns;
      for (PetscInt i = b; i <= e; ++i) {
        pointers[static_cast<std::size_t>(i - b)] = static_cast<PetscInt>(pencil.row_ptr[i] - first);
      }
      columns.resize(static_cast<std::size_t>(last - first));
      for (std::int64_t k = first; k < last; ++k) {
        columns[static_cast<std::size_t>(k - first)] = static_cast<PetscInt>(pencil.columns[k]);
      }
      const std::size_t count = static_cast<std::size_t>(last - first);
      if (r == 0) {
        local.row_ptr = std::move(pointers);
        local.columns = std::move(columns);
        local.stiffness.assign(pencil.stiffness + first, pencil.stiffness + last);
        local.mass.assign(pencil.mass + first, pencil.mass + last);
      } else {
        send(pointers.data(), pointers.size(), r);
        send(columns.data(), count, r);
        send(pencil.stiffness + first, count, r);
        send(pencil.mass + first, count, r);
      }
    }
  } else {
    receive(local.row_ptr.data(), rows + 1);
    const std::size_t count = static_cast<std::size_t>(local.row_ptr[rows]);
    local.columns.resize(count);
    local.stiffness.resize(count);
    local.mass.resize(count);
    receive(local.columns.data(), count);
    receive(local.stiffness.data(), count);
    receive(local.mass.data(), count);
  }
  return local;
}

}  // namespace

struct vsense_slepc_problem {
  Mat stiffness = nullptr, mass = nullptr;
  PetscInt n = 0;
  int rank = 0, size = 1;
  vsense_slepc_log_fn log = nullptr;
  void* log_context = nullptr;

  void say(int level, const std::string& text) const {
    if (rank == 0 && log) log(level, text.c_str(), log_context);
  }
  ~vsense_slepc_problem() {
    if (stiffness) MatDestroy(&stiffness);
    if (mass) MatDestroy(&mass);
  }
};

namespace {

struct MonitorState {
  const vsense_slepc_problem* problem;
  int wanted;
  double start, last_report;
};

PetscErrorCode monitor(EPS, PetscInt iteration, PetscInt converged, PetscScalar*, PetscScalar*,
                       PetscReal*, PetscInt, void* context) {
  auto* state = static_cast<MonitorState*>(context);
  const double t = now();
  if (t - state->last_report >= 5.0) {
    state->last_report = t;
    char line[160];
    std::snprintf(line, sizeof line, "SLEPc: restart %d, %d of %d modes converged (%.1f s)",
                  static_cast<int>(iteration), static_cast<int>(converged), state->wanted,
                  t - state->start);
    state->problem->say(1, line);
  }
  return 0;
}

double mumps_count(Mat factor, PetscInt index) {
  PetscInt value = 0;
  VSENSE_PETSC(MatMumpsGetInfog(factor, index, &value));
  // MUMPS reports large counts as negative millions.
  return value < 0 ? -1e6 * static_cast<double>(value) : static_cast<double>(value);
}

}  // namespace

extern "C" {

int vsense_slepc_api_version(void) { return VSENSE_SLEPC_API_VERSION; }

int vsense_slepc_create(const vsense_slepc_pencil* pencil, vsense_slepc_problem** out,
                        char* error, size_t error_size) {
  *out = nullptr;
  return guarded(error, error_size, [&] {
    ensure_petsc();
    auto problem = std::make_unique<vsense_slepc_problem>();
    check_mpi(MPI_Comm_rank(PETSC_COMM_WORLD, &problem->rank), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(PETSC_COMM_WORLD, &problem->size), "MPI_Comm_size");
    problem->log = pencil->log;
    problem->log_context = pencil->log_context;
    long long n = problem->rank == 0 ? static_cast<long long>(pencil->n) : 0;
    check_mpi(MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, PETSC_COMM_WORLD), "MPI_Bcast");
    long long too_large = 0;
    if (problem->rank == 0) {
      too_large = n >= std::numeric_limits<PetscInt>::max() ||
                  pencil->row_ptr[n] / problem->size >= std::numeric_limits<PetscInt>::max();
    }
    check_mpi(MPI_Bcast(&too_large, 1, MPI_LONG_LONG, 0, PETSC_COMM_WORLD), "MPI_Bcast");
    if (too_large) {
      throw Failure("the model exceeds the 32-bit indices of this PETSc build (" +
                    std::to_string(n) + " equations); use more ranks or a 64-bit-index PETSc");
    }
    problem->n = static_cast<PetscInt>(n);
    const double start = now();
    const LocalRows rows = distribute(*pencil, n, problem->rank, problem->size);
    const PetscInt local = rows.end - rows.begin;
    VSENSE_PETSC(MatCreateMPISBAIJWithArrays(PETSC_COMM_WORLD, 1, local, local, problem->n,
                                             problem->n, rows.row_ptr.data(), rows.columns.data(),
                                             rows.stiffness.data(), &problem->stiffness));
    VSENSE_PETSC(MatCreateMPISBAIJWithArrays(PETSC_COMM_WORLD, 1, local, local, problem->n,
                                             problem->n, rows.row_ptr.data(), rows.columns.data(),
                                             rows.mass.data(), &problem->mass));
    char line[160];
    std::snprintf(line, sizeof line, "SLEPc: %lld equations distributed over %d rank%s (%.2f s)",
                  n, problem->size, problem->size == 1 ? "" : "s", now() - start);
    problem->say(1, line);
    *out = problem.release();
  });
}

int vsense_slepc_solve(vsense_slepc_problem* problem, const vsense_slepc_request* request,
                       vsense_slepc_store_fn store, void* store_context,
                       vsense_slepc_report* report, char* error, size_t error_size) {
  *report = vsense_slepc_report{};
  report->ranks = problem->size;
  EPS eps = nullptr;
  Vec x = nullptr, x_root = nullptr;
  VecScatter to_root = nullptr;
  const int rc = guarded(error, error_size, [&] {
    vsense_slepc_request root_request = *request;  // rank 0's request holds for all
    check_mpi(MPI_Bcast(&root_request, sizeof root_request, MPI_BYTE, 0, PETSC_COMM_WORLD),
              "MPI_Bcast");
    request = &root_request;
    VSENSE_PETSC(EPSCreate(PETSC_COMM_WORLD, &eps));
    VSENSE_PETSC(EPSSetOperators(eps, problem->stiffness, problem->mass));
    VSENSE_PETSC(EPSSetProblemType(eps, EPS_GHEP));
    VSENSE_PETSC(EPSSetType(eps, EPSKRYLOVSCHUR));
    VSENSE_PETSC(EPSSetTarget(eps, request->target));
    VSENSE_PETSC(EPSSetWhichEigenpairs(eps, EPS_TARGET_MAGNITUDE));
    VSENSE_PETSC(EPSSetDimensions(eps, request->n_modes,
                                  request->subspace_size > 0 ? request->subspace_size
                                                             : PETSC_DEFAULT,
                                  PETSC_DEFAULT));
    VSENSE_PETSC(EPSSetTolerances(eps, request->tolerance, request->max_iterations));
    VSENSE_PETSC(EPSSetConvergenceTest(eps, EPS_CONV_REL));
    ST st = nullptr;
    VSENSE_PETSC(EPSGetST(eps, &st));
    VSENSE_PETSC(STSetType(st, STSINVERT));
    VSENSE_PETSC(STSetMatStructure(st, SAME_NONZERO_PATTERN));  // K and M share one pattern
    KSP ksp = nullptr;
    VSENSE_PETSC(STGetKSP(st, &ksp));
    VSENSE_PETSC(KSPSetType(ksp, KSPPREONLY));
    PC pc = nullptr;
    VSENSE_PETSC(KSPGetPC(ksp, &pc));
    VSENSE_PETSC(PCSetType(pc, PCCHOLESKY));
    VSENSE_PETSC(PCFactorSetMatSolverType(pc, MATSOLVERMUMPS));
    // No purification (one more solve per eigenvector, to remove components of the null space
    // of a singular M): the residual and M-orthonormality checks that follow catch a polluted
    // vector, and at 50 modes it cost a third of the solve. -eps_purify 1 turns it back on.
    VSENSE_PETSC(EPSSetPurify(eps, PETSC_FALSE));
    VSENSE_PETSC(EPSSetFromOptions(eps));
    MonitorState state{problem, request->n_modes, now(), now()};
    VSENSE_PETSC(EPSMonitorSet(eps, monitor, &state, nullptr));

    double t = now();
    VSENSE_PETSC(EPSSetUp(eps));  // the MUMPS factorisation of K - target M
    report->factor_seconds = now() - t;
    Mat factor = nullptr;
    VSENSE_PETSC(PCFactorGetMatrix(pc, &factor));
    report->factor_nonzeros = mumps_count(factor, 29);
    report->factor_megabytes = mumps_count(factor, 22);
    char line[200];
    std::snprintf(line, sizeof line,
                  "SLEPc: MUMPS factor of K - sigma M: %.3g entries, %.0f MiB on all ranks "
                  "(%.2f s)",
                  report->factor_nonzeros, report->factor_megabytes, report->factor_seconds);
    problem->say(1, line);

    t = now();
    state.start = t;
    VSENSE_PETSC(EPSSolve(eps));
    report->solve_seconds = now() - t;
    PetscInt converged = 0, iterations = 0;
    VSENSE_PETSC(EPSGetConverged(eps, &converged));
    VSENSE_PETSC(EPSGetIterationNumber(eps, &iterations));
    report->iterations = static_cast<int>(iterations);
    if (converged < request->n_modes) {
      EPSConvergedReason reason;
      VSENSE_PETSC(EPSGetConvergedReason(eps, &reason));
      throw Failure("SLEPc Krylov-Schur converged " + std::to_string(converged) + " of " +
                    std::to_string(request->n_modes) + " eigenpairs in " +
                    std::to_string(iterations) + " restarts (" + EPSConvergedReasons[reason] +
                    ")");
    }
    // Ascending eigenvalues: the order EPS returns (nearest the target) is not guaranteed to be.
    std::vector<double> values(static_cast<std::size_t>(converged));
    for (PetscInt i = 0; i < converged; ++i) {
      PetscScalar real = 0, imaginary = 0;
      VSENSE_PETSC(EPSGetEigenvalue(eps, i, &real, &imaginary));
      values[static_cast<std::size_t>(i)] = PetscRealPart(real);
    }
    std::vector<PetscInt> order(values.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](PetscInt a, PetscInt b) { return values[a] < values[b]; });
    VSENSE_PETSC(MatCreateVecs(problem->stiffness, &x, nullptr));
    VSENSE_PETSC(VecScatterCreateToZero(x, &to_root, &x_root));
    for (int k = 0; k < request->n_modes; ++k) {
      PetscScalar real = 0, imaginary = 0;
      VSENSE_PETSC(EPSGetEigenpair(eps, order[k], &real, &imaginary, x, nullptr));
      VSENSE_PETSC(VecScatterBegin(to_root, x, x_root, INSERT_VALUES, SCATTER_FORWARD));
      VSENSE_PETSC(VecScatterEnd(to_root, x, x_root, INSERT_VALUES, SCATTER_FORWARD));
      double value = PetscRealPart(real);  // rank 0's, so that every rank checks the same
      check_mpi(MPI_Bcast(&value, 1, MPI_DOUBLE, 0, PETSC_COMM_WORLD), "MPI_Bcast");
      if (problem->rank == 0) {
        const PetscScalar* data = nullptr;
        VSENSE_PETSC(VecGetArrayRead(x_root, &data));
        store(k, value, data, store_context);
        VSENSE_PETSC(VecRestoreArrayRead(x_root, &data));
      } else {
        store(k, value, nullptr, store_context);
      }
    }
    report->n_converged = request->n_modes;
    report->solve_seconds = now() - t;  // the iteration and the eigenvectors (EPSComputeVectors)
  });
  if (to_root) VecScatterDestroy(&to_root);
  if (x_root) VecDestroy(&x_root);
  if (x) VecDestroy(&x);
  if (eps) EPSDestroy(&eps);
  return rc;
}

int vsense_slepc_inertia(vsense_slepc_problem* problem, double sigma, int64_t* below,
                         int64_t* zero, double* seconds, char* error, size_t error_size) {
  Mat shifted = nullptr, factor = nullptr;
  IS rows = nullptr, columns = nullptr;
  const int rc = guarded(error, error_size, [&] {
    const double start = now();
    check_mpi(MPI_Bcast(&sigma, 1, MPI_DOUBLE, 0, PETSC_COMM_WORLD), "MPI_Bcast");
    VSENSE_PETSC(MatDuplicate(problem->stiffness, MAT_COPY_VALUES, &shifted));
    VSENSE_PETSC(MatAXPY(shifted, -sigma, problem->mass, SAME_NONZERO_PATTERN));
    VSENSE_PETSC(MatGetFactor(shifted, MATSOLVERMUMPS, MAT_FACTOR_CHOLESKY, &factor));
    VSENSE_PETSC(MatMumpsSetIcntl(factor, 13, 1));  // no ScaLAPACK root: every pivot counted
    VSENSE_PETSC(MatMumpsSetIcntl(factor, 24, 1));  // null pivots detected (INFOG(28))
    MatFactorInfo info;
    VSENSE_PETSC(MatFactorInfoInitialize(&info));
    VSENSE_PETSC(MatGetOrdering(shifted, MATORDERINGNATURAL, &rows, &columns));
    VSENSE_PETSC(MatCholeskyFactorSymbolic(factor, shifted, rows, &info));
    VSENSE_PETSC(MatCholeskyFactorNumeric(factor, shifted, &info));
    PetscInt negative = 0, zeros = 0, positive = 0;
    VSENSE_PETSC(MatGetInertia(factor, &negative, &zeros, &positive));
    *below = negative;
    *zero = zeros;
    *seconds = now() - start;
  });
  if (rows) ISDestroy(&rows);
  if (columns) ISDestroy(&columns);
  if (factor) MatDestroy(&factor);
  if (shifted) MatDestroy(&shifted);
  return rc;
}

int64_t vsense_slepc_size(const vsense_slepc_problem* problem) { return problem->n; }

void vsense_slepc_destroy(vsense_slepc_problem* problem) { delete problem; }

int vsense_slepc_describe(char* text, size_t text_size) {
  char error[256] = "";
  const int rc = guarded(error, sizeof error, [&] {
    ensure_petsc();
    PetscInt v[6] = {0, 0, 0, 0, 0, 0};
    VSENSE_PETSC(SlepcGetVersionNumber(&v[0], &v[1], &v[2], nullptr));
    VSENSE_PETSC(PetscGetVersionNumber(&v[3], &v[4], &v[5], nullptr));
    int size = 1;
    check_mpi(MPI_Comm_size(PETSC_COMM_WORLD, &size), "MPI_Comm_size");
    std::snprintf(text, text_size, "SLEPc %d.%d.%d, PETSc %d.%d.%d, MUMPS Cholesky, %d rank%s",
                  int(v[0]), int(v[1]), int(v[2]), int(v[3]), int(v[4]), int(v[5]), size,
                  size == 1 ? "" : "s");
  });
  if (rc != 0) copy_message(error, text, text_size);
  return rc;
}

}  // extern "C"
